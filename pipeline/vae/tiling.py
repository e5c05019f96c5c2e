"""Spatial tiling of the VAE decode (kept free of diffusers so the memory estimator can read it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tiling:
    """Spatial tile size and stride in pixels for tiled decoding (diffusers' defaults: 256 and 192)."""

    tile_px: int = 256  # diffusers AutoencoderKLWan default tile: bounded activations, no visible seams
    stride_px: int = 192  # 64 px of overlap are blended between neighbouring tiles
