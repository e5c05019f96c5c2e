"""Generation sizes (default, reference buckets, custom) and the portrait crop to [−1, 1] pixels."""

from __future__ import annotations

import pytest
import torch

from pipeline.portrait import encode_portrait, prepare_portrait
from pipeline.resolution import bucket_size, resolve_size


@pytest.mark.parametrize(
    ("ratio", "resolution", "expected"),
    [
        # Buckets of the reference's ASPECT_RATIO_627 (480p) / _960 (720p) tables (image h/w → bucket h × w).
        (0.58, "480p", (480, 832)),
        (1.73, "480p", (832, 480)),
        (0.54, "720p", (704, 1312)),
        (0.59, "720p", (736, 1248)),
        (1.00, "720p", (960, 960)),
        (1.70, "720p", (1248, 736)),
        # 480p has no 1.00 key: 0.95 and 1.05 tie and the reference's stable sort keeps the smaller ratio.
        (1.00, "480p", (608, 640)),
        (9.00, "480p", (1280, 320)),
    ],
)
def test_reference_buckets(ratio: float, resolution: str, expected: tuple[int, int]) -> None:
    """The closest-ratio bucket of the reference tables."""
    assert bucket_size(round(1000 * ratio), 1000, resolution) == expected


def test_size_modes() -> None:
    """512×512 by default, buckets for ai2v, fixed sizes for at2v, custom multiples of 16."""
    assert resolve_size("512x512", (300, 900)) == (512, 512)
    assert resolve_size("480p", (300, 600)) == (448, 864)
    assert resolve_size("480p", None) == (480, 832) and resolve_size("720p", None) == (768, 1280)
    assert resolve_size("custom", None, width=96, height=64) == (64, 96)
    with pytest.raises(ValueError, match="multiples of 16"):
        resolve_size("custom", None, width=100, height=64)
    with pytest.raises(ValueError, match="unknown resolution"):
        resolve_size("1080p")


def test_portrait_is_cropped_at_the_centre_and_scaled_to_minus_one_one() -> None:
    """A wide image keeps its centre: a centre stripe survives the crop, the outer stripes are cut."""
    image = torch.zeros(1, 64, 192, 3)
    image[:, :, 80:112] = 1.0  # white stripe in the middle third
    image[:, :, :16, 0] = 1.0  # red at the far left, outside a centred square
    portrait = prepare_portrait(image, mode="custom", width=64, height=64)
    assert (portrait.height, portrait.width) == (64, 64) and portrait.pixels.shape == (1, 3, 1, 64, 64)
    pixels = portrait.pixels[0, :, 0]
    assert pixels.min() >= -1 and pixels.max() <= 1
    assert pixels[:, :, 28:36].mean() > 0.99  # the white stripe now sits in the middle
    assert pixels[0, :, :8].max() < -0.99  # no red: the left edge was cropped away
    assert torch.allclose(pixels[:, :, :16], pixels[:, :, -16:].flip(-1), atol=1e-6)  # symmetric crop


def test_at2v_portrait_and_encoding() -> None:
    """No image: only the size (fixed at2v sizes); encoding passes the pixels to the VAE once."""
    portrait = prepare_portrait(None, mode="480p")
    assert (portrait.height, portrait.width, portrait.pixels) == (480, 832, None)

    class CountingVAE:
        calls = 0

        def encode(self, pixels: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return pixels.mean(dim=1, keepdim=True)

    vae = CountingVAE()
    assert encode_portrait(vae, portrait).latent is None and vae.calls == 0
    gray = prepare_portrait(torch.full((1, 20, 20, 3), 0.5), mode="custom", width=16, height=16)
    assert encode_portrait(vae, gray).latent.shape == (1, 1, 1, 16, 16) and vae.calls == 1
    assert torch.allclose(gray.pixels, torch.full_like(gray.pixels, 2 * 128 / 255 - 1), atol=1e-6)  # 8-bit
