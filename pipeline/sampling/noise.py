"""Seeded initial noise drawn on a CPU generator, so one seed gives the same video on any device."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .segments import latent_frames

LATENT_CHANNELS = 16  # Wan 2.1 VAE latent channels
VAE_SPATIAL = 8  # Wan 2.1 VAE: 8 × 8 pixels per latent

NoiseSource = Callable[[int, tuple[int, ...]], torch.Tensor]  # (segment index, latent shape) → that segment's noise


def latent_shape(num_frames: int, height: int, width: int) -> tuple[int, int, int, int, int]:
    """[1, 16, T, H/8, W/8] for a clip of num_frames at height × width pixels."""
    return (1, LATENT_CHANNELS, latent_frames(num_frames), height // VAE_SPATIAL, width // VAE_SPATIAL)


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed` (the reference seeds one generator and reuses it for every segment)."""
    return torch.Generator(device="cpu").manual_seed(int(seed))


def draw_noise(generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal float32 noise of `shape` from the CPU generator."""
    return torch.randn(shape, generator=generator, dtype=torch.float32, device="cpu")


def seeded_noise(seed: int) -> NoiseSource:
    """The default noise source: one generator seeded once and drawn from for every segment in order."""
    generator = make_generator(seed)

    def draw(segment: int, shape: tuple[int, ...]) -> torch.Tensor:
        return draw_noise(generator, shape)

    return draw
