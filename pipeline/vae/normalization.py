"""Per-channel latent normalisation of the Wan 2.1 VAE (LongCat-Video's vae/config.json latents_mean / latents_std),
with the arithmetic of LongCatVideoAvatarPipeline.normalize_latents / denormalize_latents.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# latents_mean / latents_std of LongCat-Video's vae/config.json (the Wan 2.1 VAE); used when a file carries no config.
WAN21_LATENTS_MEAN: tuple[float, ...] = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)  # fmt: skip
WAN21_LATENTS_STD: tuple[float, ...] = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
)  # fmt: skip


def _stats(latents: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and inverse std shaped [1, C, 1, 1, 1] on the latents' device and dtype."""
    channels = len(mean)
    if latents.shape[1] != channels or len(std) != channels:
        raise ValueError(f"latents have {latents.shape[1]} channels but the VAE statistics have {channels}")
    mean_t = torch.tensor(list(mean)).view(1, channels, 1, 1, 1).to(latents.device, latents.dtype)
    # The reference multiplies by 1/std rather than dividing; keep that for bit-level agreement.
    inv_std = (1.0 / torch.tensor(list(std))).view(1, channels, 1, 1, 1).to(latents.device, latents.dtype)
    return mean_t, inv_std


def normalize_latents(
    latents: torch.Tensor, mean: Sequence[float] = WAN21_LATENTS_MEAN, std: Sequence[float] = WAN21_LATENTS_STD
) -> torch.Tensor:
    """Raw VAE latents [B, C, T, H, W] → the DiT's normalised latents: (z − mean) / std."""
    mean_t, inv_std = _stats(latents, mean, std)
    return (latents - mean_t) * inv_std


def denormalize_latents(
    latents: torch.Tensor, mean: Sequence[float] = WAN21_LATENTS_MEAN, std: Sequence[float] = WAN21_LATENTS_STD
) -> torch.Tensor:
    """Normalised latents → raw VAE latents: z · std + mean (inverse of `normalize_latents`)."""
    mean_t, inv_std = _stats(latents, mean, std)
    return latents / inv_std + mean_t
