"""Every weight tensor of the DiT, named and shaped from its config, as the model classes in pipeline/dit build them.

The estimator counts bytes from this list instead of building a model; tests prove it equals the meta-device model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..dit.config import DiTConfig


@dataclass(frozen=True)
class Layer:
    """One weight-bearing layer: Linear (weight [out, in]), Conv (weight [out, in, *k]) or Norm (weight [d])."""

    name: str
    kind: str  # "linear", "conv" or "norm"
    shape: tuple[int, ...]
    bias: bool

    @property
    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """(state-dict name, shape) of the weight and, when present, the bias."""
        out = [(f"{self.name}.weight", self.shape)]
        if self.bias:
            out.append((f"{self.name}.bias", (self.shape[0],)))
        return out

    @property
    def params(self) -> int:
        """Parameter count of the layer."""
        return sum(math.prod(shape) for _, shape in self.tensors)


def linear(name: str, in_features: int, out_features: int, bias: bool = True) -> Layer:
    """A Linear layer (torch weight layout [out, in])."""
    return Layer(name, "linear", (out_features, in_features), bias)


def norm(name: str, dim: int, bias: bool = False) -> Layer:
    """An affine norm: RMSNorm (weight only) or LayerNorm (weight and bias)."""
    return Layer(name, "norm", (dim,), bias)


def block_layers(cfg: DiTConfig, prefix: str) -> list[Layer]:
    """The layers of one LongCatAvatarBlock (pipeline/dit/block.py and attention.py)."""
    dim, t_dim, head = cfg.hidden_size, cfg.adaln_tembed_dim, cfg.head_dim
    layers = [
        linear(f"{prefix}.adaLN_modulation.1", t_dim, 6 * dim),
        linear(f"{prefix}.audio_adaLN_modulation.1", t_dim, 3 * dim),
        norm(f"{prefix}.pre_crs_attn_norm", dim, bias=True),
        norm(f"{prefix}.pre_video_crs_attn_norm", dim, bias=True),
        linear(f"{prefix}.attn.qkv", dim, 3 * dim),
        norm(f"{prefix}.attn.q_norm", head),
        norm(f"{prefix}.attn.k_norm", head),
        linear(f"{prefix}.attn.proj", dim, dim),
        linear(f"{prefix}.cross_attn.q_linear", dim, dim),
        linear(f"{prefix}.cross_attn.kv_linear", dim, 2 * dim),
        linear(f"{prefix}.cross_attn.proj", dim, dim),
        norm(f"{prefix}.cross_attn.q_norm", head),
        norm(f"{prefix}.cross_attn.k_norm", head),
        linear(f"{prefix}.audio_cross_attn.q_linear", dim, dim),
        norm(f"{prefix}.audio_cross_attn.q_norm", head),
        linear(f"{prefix}.audio_cross_attn.proj", dim, dim),
        linear(f"{prefix}.audio_cross_attn.kv_linear", cfg.output_dim, 2 * dim),
        norm(f"{prefix}.audio_cross_attn.k_norm", head),
        linear(f"{prefix}.ffn.w1", dim, cfg.ffn_dim, bias=False),
        linear(f"{prefix}.ffn.w2", cfg.ffn_dim, dim, bias=False),
        linear(f"{prefix}.ffn.w3", dim, cfg.ffn_dim, bias=False),
    ]
    if cfg.audio_prenorm:
        layers.append(norm(f"{prefix}.pre_audio_crs_attn_norm", cfg.output_dim, bias=True))
    return layers


def top_layers(cfg: DiTConfig) -> list[Layer]:
    """The layers outside the blocks: embedders, audio projection, final layer (pipeline/dit/model.py)."""
    dim, t_dim = cfg.hidden_size, cfg.adaln_tembed_dim
    per_slot = cfg.audio_block * cfg.audio_channel
    patch_volume = math.prod(cfg.patch_size)
    return [
        Layer("x_embedder.proj", "conv", (dim, cfg.in_channels, *cfg.patch_size), True),
        linear("t_embedder.mlp.0", cfg.frequency_embedding_size, t_dim),
        linear("t_embedder.mlp.2", t_dim, t_dim),
        linear("y_embedder.y_proj.0", cfg.caption_channels, dim),
        linear("y_embedder.y_proj.2", dim, dim),
        linear("audio_proj.proj1", cfg.audio_window * per_slot, cfg.intermediate_dim),
        linear("audio_proj.proj1_vf", cfg.audio_window_vf * per_slot, cfg.intermediate_dim),
        linear("audio_proj.proj2", cfg.intermediate_dim, cfg.intermediate_dim),
        linear("audio_proj.proj3", cfg.intermediate_dim, cfg.context_tokens * cfg.output_dim),
        norm("audio_proj.norm", cfg.output_dim, bias=True),
        linear("final_layer.linear", dim, patch_volume * cfg.out_channels),
        linear("final_layer.adaLN_modulation.1", t_dim, 2 * dim),
    ]


@dataclass(frozen=True)
class DiTInventory:
    """The DiT's layers: one list per block, and the top-level ones."""

    blocks: list[list[Layer]]
    top: list[Layer]

    @property
    def block_params(self) -> int:
        """Parameters of one block (all blocks are alike)."""
        return sum(layer.params for layer in self.blocks[0])

    @property
    def top_params(self) -> int:
        """Parameters outside the blocks."""
        return sum(layer.params for layer in self.top)


def dit_inventory(cfg: DiTConfig) -> DiTInventory:
    """Every layer of LongCatAvatarDiT(cfg)."""
    return DiTInventory([block_layers(cfg, f"blocks.{i}") for i in range(cfg.depth)], top_layers(cfg))
