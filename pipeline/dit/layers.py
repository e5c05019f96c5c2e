"""Small DiT building blocks: embedders, SwiGLU FFN, final layer; every weight layer comes from `operations`."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .fp32 import call_fp32, modulate_fp32

# eps of every block LayerNorm / RMSNorm in the reference (LayerNorm_FP32, RMSNorm_FP32).
NORM_EPS = 1e-6
# Sinusoidal timestep embedding: minimum frequency 1/10000 (DiT / GLIDE convention).
MAX_PERIOD = 10000


def factory(device: Any, dtype: Any) -> dict[str, Any]:
    """device/dtype keyword arguments for namespace layers (comfy.ops style)."""
    return {"device": device, "dtype": dtype}


class SinusoidalEmbedding(nn.Module):
    """Parameter-free [cos | sin] embedding of scalar timesteps (first half cos), computed in float32."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t [N] (any float dtype) -> [N, dim] float32."""
        half = self.dim // 2
        exponent = torch.arange(half, dtype=torch.float32, device=t.device) / half
        freqs = torch.exp(-math.log(MAX_PERIOD) * exponent)
        args = t.float()[:, None] * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if self.dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return emb


class TimestepEmbedder(nn.Module):
    """Sinusoid -> Linear -> SiLU -> Linear (`t_embedder.mlp.{0,2}`), always computed in float32."""

    def __init__(self, t_embed_dim: int, frequency_embedding_size: int, ops: Any, device: Any, dtype: Any) -> None:
        super().__init__()
        self.sinusoid = SinusoidalEmbedding(frequency_embedding_size)
        self.mlp = nn.Sequential(
            ops.Linear(frequency_embedding_size, t_embed_dim, bias=True, **factory(device, dtype)),
            nn.SiLU(),
            ops.Linear(t_embed_dim, t_embed_dim, bias=True, **factory(device, dtype)),
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t [N] (already rounded to the model dtype by the caller) -> [N, t_embed_dim] float32."""
        return call_fp32(self.mlp, self.sinusoid(t))


class CaptionEmbedder(nn.Module):
    """Linear -> GELU(tanh) -> Linear on the umT5 embeddings (`y_embedder.y_proj.{0,2}`)."""

    def __init__(self, in_channels: int, hidden_size: int, ops: Any, device: Any, dtype: Any) -> None:
        super().__init__()
        self.y_proj = nn.Sequential(
            ops.Linear(in_channels, hidden_size, bias=True, **factory(device, dtype)),
            nn.GELU(approximate="tanh"),
            ops.Linear(hidden_size, hidden_size, bias=True, **factory(device, dtype)),
        )

    def forward(self, caption: torch.Tensor) -> torch.Tensor:
        """[B, 1, L, caption_channels] -> [B, 1, L, hidden]."""
        return self.y_proj(caption)


class PatchEmbed3D(nn.Module):
    """Conv3d patchify (kernel = stride = patch) with zero padding of odd H/W; output tokens in (t, h, w) order."""

    def __init__(self, patch: tuple[int, int, int], in_chans: int, dim: int, ops: Any, device: Any, dtype: Any) -> None:
        super().__init__()
        self.patch = patch
        self.proj = ops.Conv3d(in_chans, dim, kernel_size=patch, stride=patch, **factory(device, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, T, H, W] -> [B, N, dim]."""
        _, _, frames, height, width = x.shape
        pad_w = (-width) % self.patch[2]
        pad_h = (-height) % self.patch[1]
        pad_t = (-frames) % self.patch[0]
        if pad_w or pad_h or pad_t:
            x = F.pad(x, (0, pad_w, 0, pad_h, 0, pad_t))
        return self.proj(x).flatten(2).transpose(1, 2)


class FeedForwardSwiGLU(nn.Module):
    """w2(silu(w1 x) * w3 x), no biases."""

    def __init__(self, dim: int, hidden: int, ops: Any, device: Any, dtype: Any) -> None:
        super().__init__()
        self.w1 = ops.Linear(dim, hidden, bias=False, **factory(device, dtype))
        self.w2 = ops.Linear(hidden, dim, bias=False, **factory(device, dtype))
        self.w3 = ops.Linear(dim, hidden, bias=False, **factory(device, dtype))

    def _whole(self, x: torch.Tensor) -> torch.Tensor:
        """The FFN on every token at once."""
        return self.w2(F.silu(self.w1(x)) * self.w3(x))

    def forward(self, x: torch.Tensor, chunk_tokens: int | None = None) -> torch.Tensor:
        """[..., dim] -> [..., dim] in x's dtype; with `chunk_tokens` the tokens go through in slices of that size.

        Every token is independent in a SwiGLU FFN, so slicing only bounds the three [tokens, hidden] intermediates.
        """
        flat = x.reshape(-1, x.shape[-1])
        if chunk_tokens is None or chunk_tokens >= flat.shape[0]:
            return self._whole(x)
        out = None
        for start in range(0, flat.shape[0], chunk_tokens):
            part = self._whole(flat[start : start + chunk_tokens])
            if out is None:
                out = part.new_empty((flat.shape[0], part.shape[-1]))
            out[start : start + part.shape[0]] = part
        return out.view(*x.shape[:-1], out.shape[-1])


def ada_ln(t_dim: int, out_dim: int, ops: Any, device: Any, dtype: Any) -> nn.Sequential:
    """SiLU -> Linear modulation head (state-dict index 1 is the Linear, as in the checkpoints)."""
    return nn.Sequential(nn.SiLU(), ops.Linear(t_dim, out_dim, bias=True, **factory(device, dtype)))


def modulation(head: nn.Module, t: torch.Tensor, chunks: int) -> tuple[torch.Tensor, ...]:
    """Run an adaLN head in float32 on per-frame embeddings t [B, T, D] -> `chunks` tensors [B, T, 1, C]."""
    return call_fp32(head, t).unsqueeze(2).chunk(chunks, dim=-1)


class FinalLayer(nn.Module):
    """adaLN (shift, scale) + non-affine LayerNorm + Linear(hidden -> patch volume * out_channels), all float32."""

    def __init__(
        self, hidden: int, patch_volume: int, out_channels: int, t_dim: int, ops: Any, device: Any, dtype: Any
    ):
        super().__init__()
        self.linear = ops.Linear(hidden, patch_volume * out_channels, bias=True, **factory(device, dtype))
        self.adaLN_modulation = ada_ln(t_dim, 2 * hidden, ops, device, dtype)

    def forward(self, x: torch.Tensor, t: torch.Tensor, frames: int) -> torch.Tensor:
        """x [B, N, C], t [B, T, D] float32 -> [B, N, patch_volume * out_channels] float32."""
        batch, tokens, channels = x.shape
        shift, scale = modulation(self.adaLN_modulation, t, 2)
        # As the reference: the modulated tokens are rounded to the activation dtype, then the Linear runs in fp32.
        xm = modulate_fp32(x.view(batch, frames, -1, channels), shift, scale, NORM_EPS)
        return call_fp32(self.linear, xm.view(batch, tokens, channels))
