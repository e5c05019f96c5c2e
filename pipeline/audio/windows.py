"""Per-segment audio windows: five feature steps around each video frame, exactly as the demo scripts gather them."""

from __future__ import annotations

import torch

# Each video frame sees the feature steps at offsets −2..+2 around its centre (audio_window = 5 in the DiT config).
WINDOW_RADIUS = 2


def window_indices(start: int, num_frames: int, stride: int, length: int) -> torch.LongTensor:
    """Feature indices [num_frames, 5]: start + stride·i + (−2..2), clamped to [0, length−1]."""
    if length < 1:
        raise ValueError("cannot window an empty feature sequence")
    centres = torch.arange(num_frames, dtype=torch.long) * stride + int(start)
    offsets = torch.arange(-WINDOW_RADIUS, WINDOW_RADIUS + 1, dtype=torch.long)
    return (centres[:, None] + offsets[None, :]).clamp(0, length - 1)


def gather_windows(full: torch.Tensor, start: int, num_frames: int, stride: int) -> torch.Tensor:
    """Windows [streams, num_frames, 5, S, A] of the full features [streams, L, S, A] from feature step `start`."""
    if full.dim() != 4:
        raise ValueError(f"expected full features [streams, steps, S, A], got shape {tuple(full.shape)}")
    index = window_indices(start, num_frames, stride, full.shape[1]).to(full.device)
    return full[:, index]
