"""3D rotary position embedding (t | h | w split, interleaved pairs) and the 1D RoPE of multi-speaker routing."""

from __future__ import annotations

import torch

# RoPE base of the reference (RoFormer default).
ROPE_BASE = 10000.0


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Split the head dim into (t, h, w) parts: h = w = 2*floor(D/6), t gets the rest (44/42/42 for D=128)."""
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def _axis_angles(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Angles [len(positions), dim] with each frequency repeated for an interleaved (2i, 2i+1) pair."""
    freqs = 1.0 / (ROPE_BASE ** (torch.arange(0, dim, 2, dtype=torch.float32)[: dim // 2] / dim))
    angles = positions.float()[:, None] * freqs.to(positions.device)[None]
    return angles.repeat_interleave(2, dim=-1)


def time_positions(
    num_frames: int, ref_img_index: int | None = None, num_ref_latents: int | None = None
) -> torch.Tensor:
    """Temporal grid: 0..T-1, or [ref_img_index]*n_ref followed by 0..T-n_ref-1 when a reference latent leads."""
    if ref_img_index is not None and num_ref_latents:
        ref = torch.full((num_ref_latents,), float(ref_img_index))
        return torch.cat([ref, torch.arange(num_frames - num_ref_latents, dtype=torch.float32)])
    return torch.arange(num_frames, dtype=torch.float32)


def rope_3d_angles(
    grid: tuple[int, int, int],
    head_dim: int,
    ref_img_index: int | None = None,
    num_ref_latents: int | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Angle table [T*H*W, head_dim] (float32) for tokens in (t, h, w) row-major order."""
    frames, height, width = grid
    dim_t, dim_h, dim_w = axis_dims(head_dim)
    ang_t = _axis_angles(time_positions(frames, ref_img_index, num_ref_latents), dim_t)
    ang_h = _axis_angles(torch.arange(height, dtype=torch.float32), dim_h)
    ang_w = _axis_angles(torch.arange(width, dtype=torch.float32), dim_w)
    table = torch.cat(
        [
            ang_t[:, None, None, :].expand(frames, height, width, dim_t),
            ang_h[None, :, None, :].expand(frames, height, width, dim_h),
            ang_w[None, None, :, :].expand(frames, height, width, dim_w),
        ],
        dim=-1,
    )
    return table.reshape(frames * height * width, head_dim).to(device)


def _rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1) -> (-x1, x0) for every interleaved pair of the last dim."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


RotaryTable = tuple[torch.Tensor, torch.Tensor]


def rotary_table(angles: torch.Tensor) -> RotaryTable:
    """(cos, sin) of an angle table, float32."""
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, table: RotaryTable) -> torch.Tensor:
    """Rotate x [B, H, N, D] by a (cos, sin) table [N, D] in float32; returns x's dtype."""
    xf = x.float()
    cos, sin = table
    return (xf * cos + _rotate_pairs(xf) * sin).to(x.dtype)


def rope_1d_angles(positions: torch.Tensor, head_dim: int) -> torch.Tensor:
    """1D RoPE over the full head dim for real-valued positions [N] -> angles [N, head_dim]."""
    return _axis_angles(positions, head_dim)
