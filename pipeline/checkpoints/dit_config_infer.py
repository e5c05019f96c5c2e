"""DiT geometry inferred from tensor names and shapes (for single files that come without a config.json)."""

from __future__ import annotations

import math

from ..dit.config import AUDIO_BLOCKS_V10, AUDIO_BLOCKS_V15, DiTConfig
from ..versions import VERSIONS
from .errors import CheckpointError
from .weight_files import WeightSource

# Real audio feature geometry per version: 12 wav2vec2-base layers x 768, 5 Whisper-large-v3 groups x 1280.
REAL_AUDIO_GEOMETRY = {s.audio_blocks * s.audio_channels: (s.audio_blocks, s.audio_channels) for s in VERSIONS.values()}
# Audio window of the reference pipeline (frame centre +- 2 feature frames); not recoverable from the weights alone.
DEFAULT_AUDIO_WINDOW = 5
# Audio channel widths are multiples of 8 in every encoder we know (768, 1280, tiny test encoders).
CHANNEL_ALIGNMENT = 8


def linear_shape(source: WeightSource, name: str) -> tuple[int, ...]:
    """[out, in] of a Linear stored dense (`.weight`) or int8 (`.weight_int8`)."""
    shape = source.shape(f"{name}.weight") or source.shape(f"{name}.weight_int8")
    if shape is None:
        raise CheckpointError(f"{source.root}: no tensor {name}.weight (or .weight_int8); not a LongCat-Avatar DiT")
    return shape


def split_audio_geometry(per_slot: int, version: str | None = None) -> tuple[int, int]:
    """(audio_block, audio_channel) from their product S*A: the real geometries exactly, else by divisibility.

    The weights only fix S*A. 12 (v1.0) or 5 (v1.5) must divide it with an 8-aligned channel width; when both fit,
    the caller's `version` decides, else v1.5 (the current model) is assumed.
    """
    if version is None and per_slot in REAL_AUDIO_GEOMETRY:
        return REAL_AUDIO_GEOMETRY[per_slot]
    if version is not None:
        blocks = VERSIONS[version].audio_blocks
        if per_slot % blocks:
            raise CheckpointError(f"audio width {per_slot} is not {blocks} x channels, so it is not a {version} DiT")
        return blocks, per_slot // blocks
    fits = [
        b
        for b in (AUDIO_BLOCKS_V15, AUDIO_BLOCKS_V10)
        if per_slot % b == 0 and (per_slot // b) % CHANNEL_ALIGNMENT == 0
    ]
    if not fits:
        fits = [b for b in (AUDIO_BLOCKS_V15, AUDIO_BLOCKS_V10) if per_slot % b == 0]
    if not fits:
        raise CheckpointError(f"audio width {per_slot} is neither 5 x channels (v1.5) nor 12 x channels (v1.0)")
    return fits[0], per_slot // fits[0]


def infer_dit_config(source: WeightSource, version: str | None = None) -> DiTConfig:
    """Build a DiTConfig from stored shapes: hidden/in/patch from x_embedder, heads from q_norm width, etc."""
    conv = source.shape("x_embedder.proj.weight")
    if conv is None or len(conv) != 5:
        raise CheckpointError(f"{source.root}: no 5-D x_embedder.proj.weight; not a LongCat-Avatar DiT")
    hidden, in_channels, patch = conv[0], conv[1], tuple(conv[2:])
    head_dim = (source.shape("blocks.0.attn.q_norm.weight") or (0,))[0]
    if not head_dim or hidden % head_dim:
        raise CheckpointError(f"{source.root}: blocks.0.attn.q_norm.weight is missing or does not divide {hidden}")
    depth = 1 + max(int(k.split(".")[1]) for k in source.tensors if k.startswith("blocks."))
    t_out, t_in = linear_shape(source, "t_embedder.mlp.0")
    intermediate, in_first = linear_shape(source, "audio_proj.proj1")
    in_later = linear_shape(source, "audio_proj.proj1_vf")[1]
    output_dim = (source.shape("audio_proj.norm.weight") or (0,))[0]
    if not output_dim:
        raise CheckpointError(f"{source.root}: no audio_proj.norm.weight; not a LongCat-Avatar DiT")
    per_slot = in_first // DEFAULT_AUDIO_WINDOW
    if in_first % DEFAULT_AUDIO_WINDOW or in_later % per_slot:
        raise CheckpointError(
            f"{source.root}: audio_proj.proj1 input {in_first} / proj1_vf {in_later} do not fit a 5-frame window"
        )
    audio_block, audio_channel = split_audio_geometry(per_slot, version)
    config = DiTConfig(
        in_channels=in_channels,
        out_channels=linear_shape(source, "final_layer.linear")[0] // math.prod(patch),
        hidden_size=hidden,
        depth=depth,
        num_heads=hidden // head_dim,
        caption_channels=linear_shape(source, "y_embedder.y_proj.0")[1],
        adaln_tembed_dim=t_out,
        frequency_embedding_size=t_in,
        patch_size=patch,  # type: ignore[arg-type]
        text_tokens_zero_pad=True,  # every official avatar config sets it; not visible in the weights
        audio_window=DEFAULT_AUDIO_WINDOW,
        audio_block=audio_block,
        audio_channel=audio_channel,
        intermediate_dim=intermediate,
        output_dim=output_dim,
        context_tokens=linear_shape(source, "audio_proj.proj3")[0] // output_dim,
        vae_scale=in_later // per_slot - DEFAULT_AUDIO_WINDOW + 1,
        audio_prenorm=source.shape("blocks.0.pre_audio_crs_attn_norm.weight") is not None,
        ffn_hidden_size=linear_shape(source, "blocks.0.ffn.w1")[0],
    )
    if DiTConfig(hidden_size=hidden, num_heads=config.num_heads).ffn_dim == config.ffn_hidden_size:
        config.ffn_hidden_size = None  # the standard SwiGLU rule with mlp_ratio 4 gives this width
    return config
