"""Wan 2.1 VAE (diffusers AutoencoderKLWan) from its config: parameter count and streamed encode/decode peaks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

CACHE_FRAMES = 2  # diffusers' CACHE_T: every causal 3x3x3 convolution keeps its last 2 input frames
KERNEL = 27  # 3 x 3 x 3 causal convolutions
KERNEL_2D = 9  # the 3 x 3 spatial resampling convolutions
# Tensors of one resolution level alive at once inside a residual block: its input, the normalised input, the
# input padded with the cached frames, the convolution output and the shortcut (diffusers WanResidualBlock.forward).
LIVE_PER_LEVEL = 5


def _conv(c_in: int, c_out: int, kernel: int) -> int:
    """Weight and bias of a convolution."""
    return c_in * c_out * kernel + c_out


def _resblock(c_in: int, c_out: int) -> int:
    """WanResidualBlock: RMS norm, conv, RMS norm, conv, 1x1x1 shortcut when the width changes."""
    return (
        c_in
        + _conv(c_in, c_out, KERNEL)
        + c_out
        + _conv(c_out, c_out, KERNEL)
        + (_conv(c_in, c_out, 1) * (c_in != c_out))
    )


def _mid(dim: int) -> int:
    """WanMidBlock: residual, attention (RMS norm, qkv and projection 1x1), residual."""
    return 2 * _resblock(dim, dim) + dim + _conv(dim, 3 * dim, 1) + _conv(dim, dim, 1)


def decoder_levels(cfg: dict[str, Any]) -> Iterator[tuple[int, int, str | None, int]]:
    """(in width, out width, upsampling mode, downscale) of each decoder up-block (diffusers WanDecoder3d)."""
    mult, base = cfg["dim_mult"], cfg.get("decoder_base_dim") or cfg["base_dim"]
    dims = [base * m for m in [mult[-1], *mult[::-1]]]
    upsample = cfg["temperal_downsample"][::-1]
    scale = 2 ** (len(mult) - 1)
    for i, (c_in, c_out) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
        mode = None if i == len(mult) - 1 else ("upsample3d" if upsample[i] else "upsample2d")
        yield (c_in // 2 if i > 0 else c_in), c_out, mode, scale
        scale //= 2 if mode else 1


def wan_vae_params(cfg: dict[str, Any]) -> int:
    """Parameters of AutoencoderKLWan (Wan 2.1 layout: no residual blocks, no patching)."""
    if cfg.get("is_residual") or cfg.get("patch_size") or cfg.get("attn_scales"):
        raise ValueError("only the Wan 2.1 VAE layout is estimated (is_residual false, no patch_size/attn_scales)")
    mult, base, z, blocks = cfg["dim_mult"], cfg["base_dim"], cfg["z_dim"], cfg["num_res_blocks"]
    image = cfg.get("in_channels", 3)
    dims = [base * m for m in [1, *mult]]
    total = _conv(image, dims[0], KERNEL)
    for i, (c_in, c_out) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
        total += _resblock(c_in, c_out) + (blocks - 1) * _resblock(c_out, c_out)
        if i != len(mult) - 1:  # downsample: 3x3 stride-2 conv, plus a temporal conv when time is halved too
            total += _conv(c_out, c_out, KERNEL_2D) + cfg["temperal_downsample"][i] * _conv(c_out, c_out, 3)
    total += _mid(dims[-1]) + dims[-1] + _conv(dims[-1], 2 * z, KERNEL)  # encoder mid, norm_out, conv_out
    total += _conv(2 * z, 2 * z, 1) + _conv(z, z, 1)  # quant_conv, post_quant_conv
    first = next(decoder_levels(cfg))[0]
    total += _conv(z, first, KERNEL) + _mid(first)
    for c_in, c_out, mode, _ in decoder_levels(cfg):
        total += _resblock(c_in, c_out) + blocks * _resblock(c_out, c_out)
        if mode:  # spatial conv to half width, plus a temporal conv doubling the channels for upsample3d
            total += _conv(c_out, c_out // 2, KERNEL_2D) + (mode == "upsample3d") * _conv(c_out, 2 * c_out, 3)
    return total + c_out + _conv(c_out, cfg.get("out_channels", 3), KERNEL)


def decode_cache_elements(cfg: dict[str, Any], height: int, width: int, frames: int = CACHE_FRAMES) -> int:
    """Elements of the decoder's causal caches: `frames` (at most CACHE_FRAMES) input frames of every 3x3x3 conv."""
    blocks = cfg["num_res_blocks"]
    levels = list(decoder_levels(cfg))
    first, last_scale = levels[0][0], levels[0][3]
    total = (cfg["z_dim"] + 4 * first) * (height // last_scale) * (width // last_scale)  # conv_in, mid convs
    for c_in, c_out, mode, scale in levels:
        channels = c_in + c_out + 2 * blocks * c_out + (mode == "upsample3d") * c_out
        total += channels * (height // scale) * (width // scale)
    return min(frames, CACHE_FRAMES) * (total + levels[-1][1] * height * width)  # + conv_out at full resolution


def decode_chunk_bytes(cfg: dict[str, Any], height: int, width: int, act_bytes: int, temporal: int) -> int:
    """Peak of decoding one latent frame (`temporal` output frames) at height x width: caches + full-res tensors."""
    full_res = list(decoder_levels(cfg))[-1][1]
    working = LIVE_PER_LEVEL * full_res * (temporal + CACHE_FRAMES) * height * width
    return (decode_cache_elements(cfg, height, width) + working) * act_bytes


def encode_chunk_bytes(cfg: dict[str, Any], height: int, width: int, act_bytes: int, frames: int) -> int:
    """Peak of encoding `frames` frames at height x width: the encoder mirrors the decoder's levels and caches."""
    full_res = cfg["base_dim"] * cfg["dim_mult"][0]
    cached = min(frames, CACHE_FRAMES)
    working = LIVE_PER_LEVEL * full_res * (frames + cached) * height * width
    return (decode_cache_elements(cfg, height, width, cached) + working) * act_bytes
