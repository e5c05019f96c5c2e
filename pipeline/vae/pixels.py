"""Conversions between uint8 frames and the VAE's pixel range, as the reference round-trips them between segments."""

from __future__ import annotations

import torch


def frames_to_pixels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames [F, H, W, 3] → VAE input [1, 3, F, H, W] float32 in [−1, 1] (diffusers' x/255·2 − 1)."""
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [F, H, W, 3], got {tuple(frames.shape)} {frames.dtype}")
    unit = frames.to(torch.float32) / 255.0
    return (unit * 2.0 - 1.0).permute(3, 0, 1, 2).unsqueeze(0)


def pixels_to_frames(pixels: torch.Tensor) -> torch.Tensor:
    """VAE output [1, 3, F, H, W] in [−1, 1] → uint8 frames [F, H, W, 3], truncating like the reference demo."""
    if pixels.ndim != 5 or pixels.shape[0] != 1 or pixels.shape[1] != 3:
        raise ValueError(f"expected decoded pixels [1, 3, F, H, W], got {tuple(pixels.shape)}")
    unit = (pixels[0].to(torch.float32) / 2 + 0.5).clamp(0, 1)
    # The demo does (frame * 255).astype(np.uint8): truncation toward zero, not rounding.
    return (unit * 255).to(torch.uint8).permute(1, 2, 3, 0).contiguous()
