"""ComfyUI's own AUDIO_ENCODER on Audio Encode: the features equal our loader's for the same weights, and encoders
LongCat cannot use are refused by name.

The core objects are real `comfy.audio_encoders.audio_encoders.AudioEncoderModel`s built in-process with tiny widths
(ComfyUI's loader hard-codes the full sizes, so a server cannot load tiny files into one); Audio Encode's `execute`
runs in-process on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from support.audio_helpers import as_audio, speech_like
from support.comfy_inprocess import pack
from support.core_audio_encoders import core_encoder, write_weights

# The layer counts the reference hard-codes: chinese-wav2vec2-base (v1.0) has 12, whisper-large-v3 (v1.5) has 32.
CASES = [("v1.5", "whisper", 32), ("v1.0", "wav2vec2", 12)]


def _encode(audio_encoder: Any, audio: dict[str, Any], seed: int = 3) -> Any:
    """Audio Encode's execute, in-process, for one speaker; returns the features payload."""
    node = pack("nodes.audio_encode").AudioEncode
    output = node.execute(audio_encoder, audio, mode="para", speaker_boxes="", extra_people_boxes="", seed=seed)
    return output.result[0].features


@pytest.mark.parametrize(("version", "kind", "layers"), CASES)
def test_core_audio_encoder_gives_our_loaders_features(tmp_path: Path, version: str, kind: str, layers: int) -> None:
    file = write_weights(kind, tmp_path / f"tiny_{kind}.safetensors", layers)
    core = core_encoder(kind, file, layers)
    assert core.dtype == torch.float16 == core.get_sd()["encoder.layer_norm.weight"].dtype  # ComfyUI's choice on CPU
    ours = pack("pipeline.audio.encoders").load_audio_encoder(file, version=version)  # what our loader runs
    ours = pack("nodes.payloads").AudioEncoderHandle(ours, file.name)
    audio = as_audio(speech_like(1.3, rate=22050), rate=22050)  # resampled to 16 kHz by our front-end

    from_core, from_ours = _encode(core, audio), _encode(ours, audio)

    assert from_core.version == version and from_core.features.shape == from_ours.features.shape
    # Same fp16 tensors upcast to fp32, same transformers module and feature extractor: bit-identical features.
    assert torch.equal(from_core.features, from_ours.features)
    assert from_core.features.abs().sum() > 0


def test_core_audio_encoder_input_takes_both_types() -> None:
    schema = pack("nodes.audio_encode").AudioEncode.define_schema()
    from comfy_execution.validation import validate_node_input  # ComfyUI's own check of a link's type

    socket = next(i for i in schema.inputs if i.id == "audio_encoder").get_io_type()
    assert validate_node_input("AUDIO_ENCODER", socket)  # what core Load Audio Encoder outputs
    assert validate_node_input("LONGCAT_AUDIO_ENCODER", socket)  # what our loader outputs
    assert not validate_node_input("AUDIO", socket)


@pytest.mark.parametrize(
    ("kind", "layers", "stable", "needed"),
    [("whisper", 24, False, "whisper-large-v3"), ("wav2vec2", 24, True, "chinese-wav2vec2-base")],
)
def test_core_audio_encoder_of_another_size_is_refused(
    tmp_path: Path, kind: str, layers: int, stable: bool, needed: str
) -> None:
    core = core_encoder(kind, write_weights(kind, tmp_path / "other.safetensors", layers, stable), layers, stable)
    with pytest.raises(ValueError, match=f"audio_encoder: .*{layers} layers.*{needed}") as info:
        _encode(core, as_audio(speech_like(0.5)))
    assert "Load Audio Encoder" in str(info.value)


def test_core_audio_encoder_that_is_not_speech_is_refused(tmp_path: Path) -> None:
    core = core_encoder("whisper", write_weights("whisper", tmp_path / "w.safetensors", 32), 32)
    core.model = torch.nn.Linear(4, 4)  # a core encoder of a kind ComfyUI may add later (music, sound events)
    with pytest.raises(ValueError, match="audio_encoder: .*Linear model, not a wav2vec2 or Whisper") as info:
        _encode(core, as_audio(speech_like(0.5)))
    assert "whisper-large-v3" in str(info.value) and "chinese-wav2vec2-base" in str(info.value)
    with pytest.raises(ValueError, match="audio_encoder: expected an audio encoder .* got str"):
        _encode("whisper.safetensors", as_audio(speech_like(0.5)))
