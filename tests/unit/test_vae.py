"""Wan VAE: normalisation, pixel round trip, folder and ComfyUI single-file loading, encode by mode, tiled decode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
from safetensors.torch import save_file

from longcat_avatar.tiny_models import VAE_BASE_DIM
from pipeline.vae.loader import VAEFormatError, load_wan_vae
from pipeline.vae.normalization import WAN21_LATENTS_MEAN, WAN21_LATENTS_STD, denormalize_latents, normalize_latents
from pipeline.vae.pixels import frames_to_pixels, pixels_to_frames
from pipeline.vae.wan_vae import Tiling, WanVAE
from support.tiny_models import build_tiny_vae, diffusers_vae_key_to_comfy, write_comfy_vae_file

REAL_VAE_CONFIG = Path(__file__).resolve().parents[3] / "shared" / "realckpt" / "longcat-video" / "vae" / "config.json"


@pytest.fixture(scope="module")
def tiny_vae_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny VAE saved in the official diffusers layout (root/vae/)."""
    root = tmp_path_factory.mktemp("vae")
    build_tiny_vae(root / "vae", seed=3)
    return root


def test_statistics_are_the_real_vae_config() -> None:
    """Our Wan 2.1 constants equal latents_mean/std of LongCat-Video's vae/config.json."""
    config = json.loads(REAL_VAE_CONFIG.read_text())
    assert list(WAN21_LATENTS_MEAN) == config["latents_mean"]
    assert list(WAN21_LATENTS_STD) == config["latents_std"]


def test_normalisation_formula_and_inverse() -> None:
    """z_norm = (z − mean)/std per channel; denormalise inverts it."""
    raw = torch.randn(2, 16, 3, 4, 5)
    norm = normalize_latents(raw)
    c = 7
    expected = (raw[:, c] - WAN21_LATENTS_MEAN[c]) / WAN21_LATENTS_STD[c]
    torch.testing.assert_close(norm[:, c], expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(denormalize_latents(norm), raw, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        normalize_latents(torch.zeros(1, 4, 1, 2, 2))


def test_pixels_round_trip_truncates_like_the_demo() -> None:
    """uint8 → [−1, 1] → uint8 loses at most 1 (downwards): the demo truncates, it does not round."""
    frames = torch.randint(0, 256, (3, 4, 5, 3), dtype=torch.uint8)
    pixels = frames_to_pixels(frames)
    assert pixels.shape == (1, 3, 3, 4, 5) and pixels.min() >= -1 and pixels.max() <= 1
    back = pixels_to_frames(pixels).int() - frames.int()
    assert back.max() == 0 and back.min() >= -1
    almost = torch.full((1, 3, 1, 1, 1), (200.9 / 255) * 2 - 1)
    assert pixels_to_frames(almost).flatten().tolist() == [200, 200, 200]
    assert pixels_to_frames(torch.full((1, 3, 1, 1, 1), 5.0)).flatten().tolist() == [255, 255, 255]


def test_comfy_key_layout_round_trips_through_diffusers_converter(tiny_vae_dir: Path) -> None:
    """Our ComfyUI-layout keys are what diffusers' converter maps back onto every diffusers key."""
    state = load_wan_vae(tiny_vae_dir).state_dict()
    comfy = {diffusers_vae_key_to_comfy(k): v for k, v in state.items()}
    assert "decoder.middle.0.residual.0.gamma" in comfy and "decoder.upsamples.4.shortcut.weight" in comfy
    assert not [k for k in comfy if re.search(r"down_blocks|up_blocks|mid_block|conv_in|norm_out|quant_conv", k)]
    assert set(convert_wan_vae_to_diffusers(comfy)) == set(state)


def test_single_file_decodes_like_the_folder(tiny_vae_dir: Path, tmp_path: Path) -> None:
    """A ComfyUI single file (fp16) loads to the same network: decodes agree within fp16 weight rounding."""
    folder_model = load_wan_vae(tiny_vae_dir)
    single = write_comfy_vae_file(folder_model, tmp_path / "wan_2.1_vae.safetensors")
    file_model = load_wan_vae(single)
    assert file_model.config.base_dim == folder_model.config.base_dim == VAE_BASE_DIM
    latents = torch.randn(1, 16, 2, 4, 6, generator=torch.Generator().manual_seed(0))
    a, b = WanVAE(folder_model).decode(latents), WanVAE(file_model).decode(latents)
    assert a.shape == (1, 3, 5, 32, 48)
    assert (a - b).abs().max() < 2e-2 and (a - b).norm() / a.norm() < 1e-2


def test_encode_uses_the_posterior_mode_and_normalises(tiny_vae_dir: Path) -> None:
    """encode() = normalise(posterior mode); deterministic (no sampling)."""
    vae = WanVAE(load_wan_vae(tiny_vae_dir))
    pixels = torch.rand(1, 3, 5, 32, 48, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        mode = vae.model.encode(pixels).latent_dist.mode()
    out = vae.encode(pixels)
    assert out.shape == (1, 16, 2, 4, 6)
    torch.testing.assert_close(out, normalize_latents(mode))
    torch.testing.assert_close(vae.encode(pixels), out, atol=0, rtol=0)
    frames = pixels_to_frames(vae.decode(out))
    assert frames.shape == (5, 32, 48, 3) and frames.dtype == torch.uint8
    torch.testing.assert_close(vae.encode_frames(frames).shape, out.shape)


def test_tiled_decode(tiny_vae_dir: Path) -> None:
    """Tiling is a no-op when a tile covers the frame, and switches back off after the call."""
    vae = WanVAE(load_wan_vae(tiny_vae_dir), tiling=Tiling(tile_px=64, stride_px=48))
    latents = torch.randn(1, 16, 2, 4, 6, generator=torch.Generator().manual_seed(2))
    plain = vae.decode(latents)
    torch.testing.assert_close(vae.decode(latents, tiled=True), plain, atol=0, rtol=0)
    vae.tiling = Tiling(tile_px=16, stride_px=8)
    tiled = vae.decode(latents, tiled=True)
    assert tiled.shape == plain.shape and torch.isfinite(tiled).all() and not torch.equal(tiled, plain)
    assert vae.model.use_tiling is False
    torch.testing.assert_close(vae.decode(latents), plain, atol=0, rtol=0)


def test_unknown_files_fail_with_a_useful_message(tmp_path: Path) -> None:
    """A safetensors without Wan VAE tensors, or a missing path, names the expected file and where to get it."""
    bogus = tmp_path / "bogus.safetensors"
    save_file({"encoder.foo.weight": torch.zeros(2)}, str(bogus))
    with pytest.raises(VAEFormatError, match="wan_2.1_vae"):
        load_wan_vae(bogus)
    with pytest.raises(VAEFormatError, match="LongCat-Video"):
        load_wan_vae(tmp_path / "missing")


def test_frames_stream_per_latent_frame_exactly(tiny_vae_dir: Path) -> None:
    """decode_frames runs the causal decoder frame by frame into uint8: the frames of the whole-segment decode."""
    vae = WanVAE(load_wan_vae(tiny_vae_dir))
    latents = torch.randn(1, 16, 3, 4, 6, generator=torch.Generator().manual_seed(4))
    whole = pixels_to_frames(vae.decode(latents))
    assert torch.equal(vae.decode_frames(latents), whole) and whole.shape == (9, 32, 48, 3)
    streamed = vae.decode_frames(latents, tiled=True)  # the frame fits one tile: no tiling, as diffusers
    assert torch.equal(streamed, whole)
    torch.testing.assert_close(vae.decode(latents), vae.decode(latents))  # the decoder cache was reset afterwards


@pytest.mark.parametrize("tiled", [False, True])
def test_a_latent_prefix_decodes_to_the_same_leading_frames(tiny_vae_dir: Path, tiled: bool) -> None:
    """The decoder is causal in time: the first k latent frames give exactly the first 4(k-1)+1 frames of the whole
    decode (what lets the sampler decode only the part of the last segment the video keeps)."""
    vae = WanVAE(load_wan_vae(tiny_vae_dir), tiling=Tiling(tile_px=24, stride_px=16))
    latents = torch.randn(1, 16, 5, 5, 7, generator=torch.Generator().manual_seed(6))
    whole = vae.decode_frames(latents, tiled=tiled)
    for k in (1, 2, 4):
        assert torch.equal(vae.decode_frames(latents[:, :, :k], tiled=tiled), whole[: 4 * (k - 1) + 1])


@pytest.mark.parametrize(("tile_px", "stride_px"), [(16, 8), (24, 16), (32, 24)])
def test_tiled_frames_stream_tile_rows_like_diffusers(tiny_vae_dir: Path, tile_px: int, stride_px: int) -> None:
    """Tiles decoded one at a time and blended on the host row by row give diffusers' tiled decode exactly."""
    vae = WanVAE(load_wan_vae(tiny_vae_dir), tiling=Tiling(tile_px=tile_px, stride_px=stride_px))
    latents = torch.randn(1, 16, 3, 5, 7, generator=torch.Generator().manual_seed(5))
    expected = pixels_to_frames(vae.decode(latents, tiled=True))
    tiled = vae.decode_frames(latents, tiled=True)
    assert tiled.shape == (9, 40, 56, 3) and torch.equal(tiled, expected)
    assert not torch.equal(tiled, vae.decode_frames(latents))  # the tiles really were blended
