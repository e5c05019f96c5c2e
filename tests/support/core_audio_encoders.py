"""Tiny ComfyUI core audio encoders (AUDIO_ENCODER objects) and the weight files they are loaded from.

ComfyUI's `load_audio_encoder_from_sd` hard-codes the full model sizes, so the core `AudioEncoderModel` is built here
with tiny dimensions and given the weights the way that function does (its prefix replacements, `load_sd`). The
weights come from a seeded transformers module, written as the single `.safetensors` file ComfyUI keeps in
`models/audio_encoders/` (fp16), so our loader can read the very same tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import Wav2Vec2Config, Wav2Vec2Model, WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from support import comfy_inprocess

WIDTH = 64  # one 64-wide attention head: the head count our loader infers from bare weights (width / 64)
# What comfy/audio_encoders/audio_encoders.py strips from a file's tensor names before load_sd, per kind.
CORE_FILE_PREFIX = {"whisper": "model.", "wav2vec2": "wav2vec2."}
# The prefix ComfyUI's audio_encoders files carry (whisper: the full WhisperModel names; wav2vec2: the official
# pytorch_model.bin's Wav2Vec2ForPreTraining names).
FILE_PREFIX = {"whisper": "model.encoder.", "wav2vec2": "wav2vec2."}


def core_config(kind: str, layers: int, stable: bool = False) -> dict[str, Any]:
    """An AudioEncoderModel config as comfy's loader writes it, with tiny widths (large=stable wav2vec2)."""
    if kind == "whisper":
        return {"model_type": "whisper3", "n_audio_state": WIDTH, "n_audio_head": 1, "n_audio_layer": layers}
    return {
        "model_type": "wav2vec2",
        "embed_dim": WIDTH,
        "num_heads": 1,
        "num_layers": layers,
        "conv_norm": stable,
        "conv_bias": stable,
        "do_normalize": stable,
        "do_stable_layer_norm": stable,
    }


def transformers_module(kind: str, layers: int, stable: bool = False, seed: int = 0) -> torch.nn.Module:
    """A seeded transformers encoder of the same shape as `core_config(kind, layers, stable)`."""
    torch.manual_seed(seed)
    if kind == "whisper":
        config = WhisperConfig(
            d_model=WIDTH,
            encoder_layers=layers,
            encoder_attention_heads=1,
            encoder_ffn_dim=4 * WIDTH,  # ComfyUI's EncoderLayer: d_ff = 4 * n_state
            num_mel_bins=128,  # whisper-large-v3's mel bins, WhisperLargeV3's default n_mels
        )
        return WhisperEncoder(config).eval()
    norm = "layer" if stable else "group"
    config = Wav2Vec2Config(
        hidden_size=WIDTH,
        num_attention_heads=1,
        intermediate_size=4 * WIDTH,  # ComfyUI's FeedForward: mlp_ratio 4
        num_hidden_layers=layers,
        feat_extract_norm=norm,
        conv_bias=stable,
        do_stable_layer_norm=stable,
    )
    return Wav2Vec2Model(config).eval()


def write_weights(kind: str, path: Path, layers: int, stable: bool = False) -> Path:
    """The weights of a seeded tiny encoder as a ComfyUI models/audio_encoders/ file (fp16, ComfyUI's names)."""
    state = transformers_module(kind, layers, stable).state_dict()
    tensors = {FILE_PREFIX[kind] + name: t.to(torch.float16).contiguous() for name, t in state.items()}
    save_file(tensors, str(path))
    return path


def core_encoder(kind: str, file: Path, layers: int, stable: bool = False) -> Any:
    """A core AudioEncoderModel with tiny dimensions, loaded from `file` as ComfyUI's loader loads it."""
    core = comfy_inprocess.comfy()  # CPU-only model management first
    import comfy.audio_encoders.audio_encoders as audio_encoders

    encoder = audio_encoders.AudioEncoderModel(core_config(kind, layers, stable))
    state = core.utils.state_dict_prefix_replace(load_file(str(file)), {CORE_FILE_PREFIX[kind]: ""})
    missing, unexpected = encoder.load_sd(state)
    assert not unexpected, unexpected
    assert all(name.startswith("feature_extractor.mel_spectrogram.") for name in missing), missing
    return encoder
