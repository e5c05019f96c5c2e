"""The portrait: resize-and-centre-crop to the generation size, pixels in [−1, 1], and its VAE latent."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .imaging import resize_and_center_crop_images
from .resolution import resolve_size


@dataclass
class Portrait:
    """The first frame of the video: pixels [1, 3, 1, H, W] in [−1, 1] (None for at2v) and the generation size."""

    height: int
    width: int
    pixels: torch.Tensor | None = None
    latent: torch.Tensor | None = None  # normalised [1, 16, 1, H/8, W/8] once encoded


def _as_chw(image: torch.Tensor) -> torch.Tensor:
    """A ComfyUI IMAGE ([B, H, W, C] or [H, W, C], floats in [0, 1]) → its first image as [1, 3, H, W]."""
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an image [B, H, W, C] with 1, 3 or 4 channels, got {tuple(image.shape)}")
    rgb = image[:1, ..., :3] if image.shape[-1] != 1 else image[:1].expand(-1, -1, -1, 3)
    return rgb.permute(0, 3, 1, 2).float()


def prepare_portrait(
    image: torch.Tensor | None, mode: str = "512x512", width: int | None = None, height: int | None = None
) -> Portrait:
    """Choose the size (default 512×512, 480p/720p buckets, or custom) and crop the image to it; no image = at2v."""
    size = None if image is None else (int(_as_chw(image).shape[-2]), int(_as_chw(image).shape[-1]))
    out_h, out_w = resolve_size(mode, size, width, height)
    if image is None:
        return Portrait(out_h, out_w)
    cropped = resize_and_center_crop_images(_as_chw(image), out_h, out_w)  # [1, 3, H, W] in [0, 1]
    return Portrait(out_h, out_w, pixels=(cropped * 2.0 - 1.0).unsqueeze(2))


def encode_portrait(vae, portrait: Portrait) -> Portrait:
    """Encode the portrait pixels with the VAE (posterior mode, normalised); at2v portraits stay without latent."""
    if portrait.pixels is not None:
        portrait.latent = vae.encode(portrait.pixels)
    return portrait
