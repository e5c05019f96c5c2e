"""Self-attention (conditioning cases A/B/C, reference masking, KV cache), text and audio cross-attention."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .attention_backend import AttentionFn, attention
from .fp32 import rms_norm_reference
from .layers import NORM_EPS, factory
from .multispeaker import key_positions, query_positions, reference_attention_map
from .rope import RotaryTable, apply_rope, rope_1d_angles, rope_3d_angles, rotary_table


@dataclass
class FrameLayout:
    """How the latent frames of one call are arranged: [ref | clean cond | noisy], plus the reference RoPE slot."""

    frames: int  # latent frames of the hidden states (noisy only when a KV cache holds the clean ones)
    height: int
    width: int
    num_cond_latents: int = 0  # clean frames (including the reference) in front, or held by the KV cache
    num_ref_latents: int | None = None
    ref_img_index: int | None = None
    mask_frame_range: int | None = None
    _tables: dict[tuple, RotaryTable] = field(default_factory=dict, repr=False, compare=False)

    def rope_table(self, frames: int, head_dim: int, device: torch.device) -> RotaryTable:
        """3D RoPE (cos, sin) for `frames` latent frames of this grid, computed once per forward call."""
        key = (frames, head_dim, device)
        if key not in self._tables:
            ref_index = self.ref_img_index if self.has_ref else None
            grid = (frames, self.height, self.width)
            self._tables[key] = rotary_table(rope_3d_angles(grid, head_dim, ref_index, self.num_ref_latents, device))
        return self._tables[key]

    @property
    def frame_tokens(self) -> int:
        """Tokens per latent frame (N_h * N_w)."""
        return self.height * self.width

    @property
    def has_ref(self) -> bool:
        """True when a reference latent leads the sequence (placed at RoPE time ref_img_index)."""
        return bool(self.num_ref_latents) and self.ref_img_index is not None

    def masked_noisy_frames(self, num_noisy: int) -> tuple[int, int] | None:
        """Half-open noisy-frame range that must not see the reference (RoPE times ref_img_index +- range)."""
        if not self.has_ref or not self.mask_frame_range or self.mask_frame_range <= 0:
            return None
        offset = self.ref_img_index - self.num_cond_latents + self.num_ref_latents  # type: ignore[operator]
        start, end = offset - self.mask_frame_range, offset + self.mask_frame_range + 1
        if start >= 0 and end > start and end <= num_noisy:
            return start, end
        return None


def split_heads(x: torch.Tensor, parts: int, heads: int) -> tuple[torch.Tensor, ...]:
    """[B, N, parts*H*D] -> `parts` tensors [B, H, N, D]."""
    batch, tokens, width = x.shape
    return x.view(batch, tokens, parts, heads, width // (parts * heads)).permute(2, 0, 3, 1, 4).unbind(0)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, H, N, D] -> [B, N, H*D]."""
    return x.transpose(1, 2).flatten(2)


def make_rms(head_dim: int, ops: Any, device: Any, dtype: Any) -> nn.Module:
    """Per-head RMSNorm module from the namespace (owns the `*_norm.weight` tensor)."""
    return ops.RMSNorm(head_dim, eps=NORM_EPS, elementwise_affine=True, **factory(device, dtype))


def attend_noisy(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: FrameLayout,
    num_noisy: int,
    backend: AttentionFn | None,
) -> torch.Tensor:
    """Noisy queries attend to all keys, except the masked frame range which skips the reference frame's keys."""
    masked = layout.masked_noisy_frames(num_noisy)
    if masked is None:
        return attention(q, k, v, backend)
    ft = layout.frame_tokens
    start, end = masked[0] * ft, masked[1] * ft
    ref = ft * (layout.num_ref_latents or 1)
    parts = [
        attention(q[:, :, :start], k, v, backend),
        attention(q[:, :, start:end], k[:, :, ref:], v[:, :, ref:], backend),
        attention(q[:, :, end:], k, v, backend),
    ]
    return torch.cat(parts, dim=2)


class SelfAttention(nn.Module):
    """Fused-qkv self-attention with per-head RMSNorm and 3D RoPE (`attn.*`)."""

    def __init__(self, dim: int, heads: int, ops: Any, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = ops.Linear(dim, 3 * dim, bias=True, **factory(device, dtype))
        self.q_norm = make_rms(self.head_dim, ops, device, dtype)
        self.k_norm = make_rms(self.head_dim, ops, device, dtype)
        self.proj = ops.Linear(dim, dim, bias=True, **factory(device, dtype))
        self.backend: AttentionFn | None = None

    def _uncached(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: FrameLayout) -> torch.Tensor:
        """Cases A (no cond), B (one clean frame), C (reference + clean frames + noisy, with masking)."""
        ft, ncl = layout.frame_tokens, layout.num_cond_latents
        if ncl <= 0:
            return attention(q, k, v, self.backend)
        if ncl == 1:
            cond = attention(q[:, :, :ft], k[:, :, :ft], v[:, :, :ft], self.backend)
            return torch.cat([cond, attention(q[:, :, ft:], k, v, self.backend)], dim=2)
        if not layout.has_ref:
            raise ValueError("num_cond_latents > 1 (continuation) needs num_ref_latents and ref_img_index")
        ref, clean = ft * layout.num_ref_latents, ft * ncl  # type: ignore[operator]
        parts = [
            attention(q[:, :, :ref], k[:, :, :ref], v[:, :, :ref], self.backend),
            attention(q[:, :, ref:clean], k[:, :, ref:clean], v[:, :, ref:clean], self.backend),
        ]
        if ncl < layout.frames:
            parts.append(attend_noisy(q[:, :, clean:], k, v, layout, layout.frames - ncl, self.backend))
        return torch.cat(parts, dim=2)

    def forward(
        self,
        x: torch.Tensor,
        layout: FrameLayout,
        kv_cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        return_kv: bool = False,
        masks: torch.Tensor | None = None,
        map_chunk: int | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]:
        """x [B, N, C] -> (output [B, N, C], pre-RoPE (k, v) if return_kv, reference attention map if masks).

        `map_chunk` bounds the reference map to that many noisy queries at a time (None: all at once)."""
        batch = x.shape[0]
        q, k, v = split_heads(self.qkv(x), 3, self.heads)
        q, k = rms_norm_reference(q, self.q_norm), rms_norm_reference(k, self.k_norm)
        new_kv = (k.contiguous(), v.contiguous()) if return_kv else None
        if kv_cache is not None:
            if layout.num_cond_latents <= 0:
                raise ValueError("a KV cache needs num_cond_latents > 0 (the number of cached clean frames)")
            # A cache kept on the host comes to the compute device here, one block at a time.
            k_cache, v_cache = (t.to(device=k.device, dtype=k.dtype, non_blocking=True) for t in kv_cache)
            if k_cache.shape[0] != batch:
                k_cache, v_cache = k_cache.expand(batch, -1, -1, -1), v_cache.expand(batch, -1, -1, -1)
            cos, sin = layout.rope_table(layout.frames + layout.num_cond_latents, self.head_dim, x.device)
            k = apply_rope(torch.cat([k_cache, k], dim=2), (cos, sin))
            v = torch.cat([v_cache, v], dim=2)
            q = apply_rope(q, (cos[-q.shape[2] :], sin[-q.shape[2] :]))
            out = attend_noisy(q, k, v, layout, layout.frames, self.backend)
            q_noise = q
        else:
            table = layout.rope_table(layout.frames, self.head_dim, x.device)
            q, k = apply_rope(q, table), apply_rope(k, table)
            out = self._uncached(q, k, v, layout)
            q_noise = q[:, :, layout.num_cond_latents * layout.frame_tokens :]
        out = self.proj(merge_heads(out))
        ref_map = None
        if masks is not None:
            if layout.num_cond_latents <= 0:
                raise ValueError("multi-speaker (ref_target_masks) needs a clean first frame: num_cond_latents > 0")
            ref_map = reference_attention_map(q_noise.to(out.dtype), k[:, :, : layout.frame_tokens], masks, map_chunk)
        return out, new_kv, ref_map


class TextCrossAttention(nn.Module):
    """Cross-attention from video tokens to the projected caption (`cross_attn.*`); no gate, no RoPE."""

    def __init__(self, dim: int, heads: int, ops: Any, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.heads = heads
        self.q_linear = ops.Linear(dim, dim, bias=True, **factory(device, dtype))
        self.kv_linear = ops.Linear(dim, 2 * dim, bias=True, **factory(device, dtype))
        self.proj = ops.Linear(dim, dim, bias=True, **factory(device, dtype))
        self.q_norm = make_rms(dim // heads, ops, device, dtype)
        self.k_norm = make_rms(dim // heads, ops, device, dtype)
        self.backend: AttentionFn | None = None

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, key_mask: torch.Tensor | None, skip_tokens: int
    ) -> torch.Tensor:
        """x [B, N, C] (normed), y [B, L, C]; key_mask [B, L] bool or None; the first `skip_tokens` get zeros."""
        (q,) = split_heads(self.q_linear(x[:, skip_tokens:]), 1, self.heads)
        k, v = split_heads(self.kv_linear(y), 2, self.heads)
        q, k = rms_norm_reference(q, self.q_norm), rms_norm_reference(k, self.k_norm)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = self.proj(merge_heads(attention(q, k, v, self.backend, mask)))
        if skip_tokens:
            out = torch.cat([out.new_zeros(x.shape[0], skip_tokens, x.shape[2]), out], dim=1)
        return out


@dataclass
class SpeakerRouting:
    """Inputs of multi-speaker 1D-RoPE routing for one block."""

    ref_map: torch.Tensor  # [K, S_noisy]
    human_num: int | None
    class_range: int
    class_interval: int


class AudioCrossAttention(nn.Module):
    """Per-frame cross-attention from video tokens to that frame's audio tokens (`audio_cross_attn.*`)."""

    def __init__(self, dim: int, audio_dim: int, heads: int, ops: Any, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.q_linear = ops.Linear(dim, dim, bias=True, **factory(device, dtype))
        self.q_norm = make_rms(self.head_dim, ops, device, dtype)
        self.proj = ops.Linear(dim, dim, bias=True, **factory(device, dtype))
        self.kv_linear = ops.Linear(audio_dim, 2 * dim, bias=True, **factory(device, dtype))
        self.k_norm = make_rms(self.head_dim, ops, device, dtype)
        self.backend: AttentionFn | None = None

    def _route(self, t: torch.Tensor, frames: int, positions: torch.Tensor) -> torch.Tensor:
        """Apply 1D RoPE to t [(B*F), H, S, D] with positions over the frame-major token sequence [F*S]."""
        bf, heads, tokens, dim = t.shape
        flat = t.view(bf // frames, frames, heads, tokens, dim).transpose(1, 2).reshape(bf // frames, heads, -1, dim)
        flat = apply_rope(flat, rotary_table(rope_1d_angles(positions.to(t.device), dim)))
        return flat.view(bf // frames, heads, frames, tokens, dim).transpose(1, 2).reshape(bf, heads, tokens, dim)

    def forward(
        self, x: torch.Tensor, audio: torch.Tensor, frames: int, routing: SpeakerRouting | None
    ) -> torch.Tensor:
        """x [B, F*S, C] (normed noisy tokens), audio [(B*F), M, A] -> [B, F*S, C]."""
        batch, tokens, channels = x.shape
        per_frame = tokens // frames
        (q,) = split_heads(self.q_linear(x.reshape(batch * frames, per_frame, channels)), 1, self.heads)
        k, v = split_heads(self.kv_linear(audio), 2, self.heads)
        q, k = rms_norm_reference(q, self.q_norm), rms_norm_reference(k, self.k_norm)
        if routing is not None:
            q = self._route(q, frames, query_positions(routing.ref_map, routing.class_range, routing.class_interval))
            keys = key_positions(
                k.shape[2], routing.human_num, routing.ref_map.shape[0], routing.class_range, routing.class_interval
            )
            k = self._route(k, frames, keys.to(k.dtype).repeat(frames))
        out = self.proj(merge_heads(attention(q, k, v, self.backend)))
        return out.reshape(batch, tokens, channels)
