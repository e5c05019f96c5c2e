"""LongCatAvatarDiT: the LongCat-Video-Avatar transformer (v1.0 and v1.5) as a plain torch module."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..memory.options import ActivationOptions
from ..operations import resolve_operations
from .attention import FrameLayout
from .attention_backend import resolve
from .audio_proj import AudioProjModel, regroup_audio_windows
from .block import BlockContext, LongCatAvatarBlock
from .config import DiTConfig
from .layers import CaptionEmbedder, FinalLayer, PatchEmbed3D, TimestepEmbedder
from .multispeaker import token_masks

KVCache = dict[int, tuple[torch.Tensor, torch.Tensor]]


def prepare_text(
    y: torch.Tensor, mask: torch.Tensor | None, zero_pad: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Projected caption [B, 1, L, C] -> ([B, L, C], keep-mask [B, L] or None when every token is attended).

    With `text_tokens_zero_pad` the padded positions become exact zeros after projection and are still attended
    (the reference then treats the mask as all ones).
    """
    y = y.flatten(1, 2) if y.dim() == 4 else y
    if mask is None:
        return y, None
    mask = mask.reshape(y.shape[0], -1).to(y.device)
    if zero_pad:
        return y * mask[:, :, None].to(y.dtype), None
    keep = mask != 0
    return y, None if bool(keep.all()) else keep


def unpatchify(x: torch.Tensor, grid: tuple[int, int, int], patch: tuple[int, int, int], channels: int) -> torch.Tensor:
    """Tokens [B, N, pt*ph*pw*C] (channel fastest) -> video [B, C, T*pt, H*ph, W*pw]."""
    frames, height, width = grid
    pt, ph, pw = patch
    x = x.view(x.shape[0], frames, height, width, pt, ph, pw, channels)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)
    return x.reshape(x.shape[0], channels, frames * pt, height * ph, width * pw)


def to_host(t: torch.Tensor) -> torch.Tensor:
    """A host copy of a device tensor, page-locked when CUDA is up so the per-block copy back can overlap."""
    if t.device.type == "cpu":
        return t
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=torch.cuda.is_available())
    host.copy_(t)
    return host


class LongCatAvatarDiT(nn.Module):
    """LongCatVideoAvatarTransformer3DModel with the official state-dict names; layers come from `operations`."""

    def __init__(self, config: DiTConfig, operations: Any = None, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        ops = resolve_operations(operations)
        cfg = self.config = config
        self.x_embedder = PatchEmbed3D(cfg.patch_size, cfg.in_channels, cfg.hidden_size, ops, device, dtype)
        self.t_embedder = TimestepEmbedder(cfg.adaln_tembed_dim, cfg.frequency_embedding_size, ops, device, dtype)
        self.y_embedder = CaptionEmbedder(cfg.caption_channels, cfg.hidden_size, ops, device, dtype)
        self.blocks = nn.ModuleList(LongCatAvatarBlock(cfg, ops, device, dtype) for _ in range(cfg.depth))
        per_slot = cfg.audio_block * cfg.audio_channel
        self.audio_proj = AudioProjModel(
            cfg.audio_window * per_slot,
            cfg.audio_window_vf * per_slot,
            cfg.intermediate_dim,
            cfg.context_tokens,
            cfg.output_dim,
            ops,
            device,
            dtype,
        )
        patch_volume = math.prod(cfg.patch_size)
        self.final_layer = FinalLayer(
            cfg.hidden_size, patch_volume, cfg.out_channels, cfg.adaln_tembed_dim, ops, device, dtype
        )
        self._compute_dtype: torch.dtype | None = None
        self.activation_options = ActivationOptions()
        self.set_attention_backend(cfg.attention_backend)

    @property
    def compute_dtype(self) -> torch.dtype:
        """Activation dtype: an explicit override, else the dtype of the patch-embedding weight."""
        return self._compute_dtype or self.x_embedder.proj.weight.dtype

    def set_compute_dtype(self, dtype: torch.dtype | None) -> None:
        """Force the activation dtype (e.g. bf16 compute over fp8-stored weights); None follows the weights."""
        self._compute_dtype = dtype

    def set_activation_options(self, options: ActivationOptions) -> None:
        """Chunk sizes and KV-cache placement for the next forwards (see pipeline.memory.plan for budget defaults)."""
        self.activation_options = options

    def set_attention_backend(self, name: str) -> None:
        """Select "sdpa" (default), "sage" or "flash" for every attention layer (falls back to SDPA if missing)."""
        backend = resolve(name)
        self.config.attention_backend = name
        for module in self.modules():
            if hasattr(module, "backend") and module is not self:
                module.backend = backend

    def audio_tokens(
        self, audio_embs: torch.Tensor, frames: int, num_ref_latents: int, multi: bool, like: torch.Tensor
    ) -> torch.Tensor:
        """Windowed features [B_a, F_v, W, S, A] -> [(B_a*T), M, C_a] (single) or [T, B_a*M, C_a] (multi).

        The features are moved to the device/dtype of `like` (the patch-embedded hidden states)."""
        audio = audio_embs.to(device=like.device, dtype=like.dtype)
        tokens = self.audio_proj(*regroup_audio_windows(audio, self.config.vae_scale))
        if num_ref_latents:
            tokens = torch.cat([tokens[:, :1]] * num_ref_latents + [tokens], dim=1)
        if tokens.shape[1] < frames:
            raise ValueError(f"audio_embs cover {tokens.shape[1]} latent frames but the latents have {frames}")
        tokens = tokens[:, -frames:]
        if multi:
            return tokens.transpose(0, 1).flatten(1, 2)
        return tokens.flatten(0, 1)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
        audio_embs: torch.Tensor | None = None,
        num_cond_latents: int | None = 0,
        num_ref_latents: int | None = 0,
        ref_img_index: int | None = None,
        mask_frame_range: int | None = None,
        ref_target_masks: torch.Tensor | None = None,
        kv_cache_dict: KVCache | None = None,
        return_kv: bool = False,
        skip_crs_attn: bool = False,
        offload_kv_cache: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, KVCache]:
        """Predict the flow velocity [B, C, T, H, W] (float32); with `return_kv` also the per-block (k, v).

        `offload_kv_cache` (the reference option of the same name) or the activation options' `kv_cache_on_host`
        return the cache in host memory; the blocks move it back to the compute device one block at a time."""
        cfg, dtype, options = self.config, self.compute_dtype, self.activation_options
        batch, _, frames, height, width = hidden_states.shape
        grid = (frames, -(-height // cfg.patch_size[1]), -(-width // cfg.patch_size[2]))
        if timestep.dim() == 1:
            timestep = timestep[:, None].expand(-1, frames)
        x = self.x_embedder(hidden_states.to(dtype))
        # Timesteps are rounded to the model dtype before the sinusoid (the reference casts them), MLP in fp32.
        t = self.t_embedder(timestep.to(x.device, dtype).flatten()).view(batch, frames, -1)
        text, text_mask = prepare_text(
            self.y_embedder(encoder_hidden_states.to(x.device, dtype)), encoder_attention_mask, cfg.text_tokens_zero_pad
        )
        multi = ref_target_masks is not None
        if audio_embs is None and not skip_crs_attn:
            raise ValueError("audio_embs is required unless skip_crs_attn=True")
        audio = None
        if audio_embs is not None:
            audio = self.audio_tokens(audio_embs, frames, num_ref_latents or 0, multi, x)
        masks = token_masks(ref_target_masks.to(x.device), grid[1:], dtype) if multi else None
        layout = FrameLayout(*grid, num_cond_latents or 0, num_ref_latents, ref_img_index, mask_frame_range)
        ctx = BlockContext(
            layout, t, text, text_mask, audio, skip_crs_attn, masks, audio_embs.shape[0] if multi else None,
            cached=bool(kv_cache_dict), return_kv=return_kv, options=options,
        )  # fmt: skip
        on_host = offload_kv_cache or options.kv_cache_on_host
        new_cache: KVCache = {}
        for index, block in enumerate(self.blocks):
            x, kv = block(x, ctx, kv_cache_dict[index] if kv_cache_dict else None)
            if kv is not None:
                new_cache[index] = (to_host(kv[0]), to_host(kv[1])) if on_host else kv
        out = unpatchify(self.final_layer(x, t, frames), grid, cfg.patch_size, cfg.out_channels)
        out = out[:, :, :, :height, :width].float()
        return (out, new_cache) if return_kv else out
