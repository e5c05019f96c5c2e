"""transformers configs for audio encoders that come as bare weights (ComfyUI's single .safetensors files)."""

from __future__ import annotations

import re

import torch
from transformers import PretrainedConfig, Wav2Vec2Config, WhisperConfig

from .encoder_files import WAV2VEC2
from .errors import AudioEncoderError

# wav2vec2 and Whisper use 64-wide attention heads in every published size (base 768/12, large 1024/16,
# whisper-large 1280/20); head count is not visible in the weights, so derive it from this.
HEAD_DIM = 64
# The wav2vec 2.0 CNN feature encoder: 7 layers with these strides (320x downsampling, 16 kHz -> 50 Hz).
WAV2VEC2_CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def _count_layers(state: dict[str, torch.Tensor], prefix: str) -> int:
    """Number of consecutive numbered sub-modules `prefix{i}.` present in the state dict."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for name in state if (m := pattern.match(name))}
    return max(found) + 1 if found else 0


def _need(state: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """A tensor the config inference cannot do without."""
    if name not in state:
        raise AudioEncoderError(f"audio encoder weights lack {name!r}; the file is incomplete or not an encoder")
    return state[name]


def _pos_conv_weight(state: dict[str, torch.Tensor]) -> torch.Tensor:
    """The positional-convolution direction tensor (legacy `weight_v` or parametrized `original1`)."""
    base = "encoder.pos_conv_embed.conv."
    for name in ("weight_v", "parametrizations.weight.original1", "weight"):
        if base + name in state:
            return state[base + name]
    raise AudioEncoderError("wav2vec2 weights lack encoder.pos_conv_embed.conv.weight(_v)")


def infer_wav2vec2_config(state: dict[str, torch.Tensor]) -> Wav2Vec2Config:
    """A Wav2Vec2Config matching a module-relative wav2vec2 state dict."""
    hidden = int(_need(state, "encoder.layer_norm.weight").shape[0])
    n_conv = _count_layers(state, "feature_extractor.conv_layers.")
    if n_conv != len(WAV2VEC2_CONV_STRIDES):
        raise AudioEncoderError(
            f"wav2vec2 weights have {n_conv} CNN layers; only the standard 7-layer encoder is known"
        )
    convs = [_need(state, f"feature_extractor.conv_layers.{i}.conv.weight") for i in range(n_conv)]
    layer_norm_everywhere = "feature_extractor.conv_layers.1.layer_norm.weight" in state
    pos = _pos_conv_weight(state)
    return Wav2Vec2Config(
        hidden_size=hidden,
        num_hidden_layers=_count_layers(state, "encoder.layers."),
        num_attention_heads=max(1, hidden // HEAD_DIM),
        intermediate_size=int(_need(state, "encoder.layers.0.feed_forward.intermediate_dense.weight").shape[0]),
        num_feat_extract_layers=n_conv,
        conv_dim=[int(w.shape[0]) for w in convs],
        conv_kernel=[int(w.shape[2]) for w in convs],
        conv_stride=list(WAV2VEC2_CONV_STRIDES),
        conv_bias="feature_extractor.conv_layers.0.conv.bias" in state,
        # "group" = GroupNorm in the first CNN layer only (base models); "layer" = LayerNorm in every CNN layer,
        # which the published checkpoints pair with the pre-norm ("stable") transformer (large models).
        feat_extract_norm="layer" if layer_norm_everywhere else "group",
        do_stable_layer_norm=layer_norm_everywhere,
        num_conv_pos_embeddings=int(pos.shape[-1]),
        num_conv_pos_embedding_groups=hidden // int(pos.shape[1]),
    )


def infer_whisper_config(state: dict[str, torch.Tensor]) -> WhisperConfig:
    """A WhisperConfig whose encoder matches a module-relative WhisperEncoder state dict."""
    conv1 = _need(state, "conv1.weight")
    d_model = int(conv1.shape[0])
    layers = _count_layers(state, "layers.")
    return WhisperConfig(
        d_model=d_model,
        num_mel_bins=int(conv1.shape[1]),
        encoder_layers=layers,
        num_hidden_layers=layers,
        encoder_attention_heads=max(1, d_model // HEAD_DIM),
        encoder_ffn_dim=int(_need(state, "layers.0.fc1.weight").shape[0]),
        max_source_positions=int(_need(state, "embed_positions.weight").shape[0]),
    )


def infer_config(kind: str, state: dict[str, torch.Tensor]) -> PretrainedConfig:
    """The transformers config of a bare encoder state dict of `kind`."""
    return infer_wav2vec2_config(state) if kind == WAV2VEC2 else infer_whisper_config(state)
