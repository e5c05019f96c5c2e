"""GPU check section 5: the real-size Wan 2.1 VAE (random weights) decoding one 93-frame 480p segment whole,
streamed per latent frame, and tiled; seconds and peak memory against the estimator's figures."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from gpu_check_common import GB, Context, log, timed
from gpu_check_dit import SEGMENT

from pipeline.memory.estimate import VideoShape, decode_bytes, shipped_configs
from pipeline.memory.vae import wan_vae_params
from pipeline.sampling.noise import latent_shape
from pipeline.vae.tiling import Tiling

TINY_VAE = {"base_dim": 8}  # the tiny VAE's width (longcat_avatar.tiny_models), the real one has 96
TINY_TILING = Tiling(tile_px=24, stride_px=16)  # tiles smaller than the tiny frame, so tiling really happens
TINY_FRAMES = 5  # two latent frames exercise the causal caches
TINY_SIZE = (32, 48)


def section_vae(ctx: Context) -> dict[str, Any]:
    """5. Decode whole (diffusers), streamed and tiled: the streamed frames equal the whole decode's."""
    from diffusers import AutoencoderKLWan

    from pipeline.vae.pixels import pixels_to_frames
    from pipeline.vae.wan_vae import WanVAE

    configs = shipped_configs()
    vae_config = {**configs.vae, **TINY_VAE} if ctx.tiny else configs.vae
    configs = dataclasses.replace(configs, vae=vae_config)
    tiling = TINY_TILING if ctx.tiny else Tiling()
    height, width = TINY_SIZE if ctx.tiny else (480, 832)
    frames = TINY_FRAMES if ctx.tiny else SEGMENT
    torch.manual_seed(7)
    dtype = torch.float32 if ctx.tiny else torch.bfloat16  # CPUs have no fast bf16 3D convolutions
    vae = WanVAE(AutoencoderKLWan.from_config(vae_config).to(dtype), ctx.device, tiling)
    latents = torch.randn(latent_shape(frames, height, width), generator=torch.Generator().manual_seed(8))
    shape = VideoShape(height, width, configs.text_tokens)
    weights = wan_vae_params(vae_config) * dtype.itemsize
    runs = {
        "whole": lambda: pixels_to_frames(vae.decode(latents)),
        "streamed": lambda: vae.decode_frames(latents),
        "tiled": lambda: vae.decode_frames(latents, tiled=True),
    }
    report: dict[str, Any] = {"weights_gb": weights / GB}
    outputs = {}
    for name, run in runs.items():
        ctx.reset_peak()
        outputs[name], median, _ = timed(ctx, run, repeats=1)
        estimate = None if name == "whole" else (weights + decode_bytes(configs, shape, name == "tiled", tiling)) / GB
        report[name] = {"seconds": median, "peak_gb": ctx.peak_gb(), "estimated_peak_gb": estimate}
        log(f"  decode {name}: {median:.2f} s, peak {ctx.peak_gb()}")
    report["streamed_equals_whole"] = torch.equal(outputs["streamed"], outputs["whole"])
    report["tiled_max_abs_diff"] = int((outputs["tiled"].int() - outputs["whole"].int()).abs().max())
    if not report["streamed_equals_whole"]:
        raise AssertionError("streamed decoding differs from the whole-segment decode")
    return report
