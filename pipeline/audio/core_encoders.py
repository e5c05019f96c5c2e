"""ComfyUI's own audio encoders (the core AUDIO_ENCODER type) as our encoders, from their weights alone.

ComfyUI's `AudioEncoderModel.get_sd()` returns the state dict of its own modules (comfy/audio_encoders/whisper.py
`WhisperLargeV3`, comfy/audio_encoders/wav2vec2.py `Wav2Vec2Model`). Those weights are renamed here to the
transformers modules our encoders are (WhisperEncoder, Wav2Vec2Model) and run through the same feature extractor
and module as a file our loader reads, so the features equal our loader's for the same weights. ComfyUI's own
`encode_audio` (torchaudio resampling, its own log-mel) is never used. The caller passes the state dict and the kind
it saw; nothing here imports ComfyUI.
"""

from __future__ import annotations

import torch

from ..versions import VERSIONS
from .encoder_files import WAV2VEC2, WHISPER, detect_encoder_kind
from .encoders import AudioEncoder, build_audio_encoder
from .errors import AudioEncoderError

# Where each core module keeps the tensors of the transformers module: WhisperLargeV3 nests its encoder under
# `encoder.` (beside `feature_extractor.*`, the torchaudio window and mel filterbank of its own preprocessing, which
# we do not use: transformers' WhisperFeatureExtractor computes the log-mel as the reference does); ComfyUI's
# Wav2Vec2Model names its tensors exactly as transformers' Wav2Vec2Model does.
CORE_PREFIXES = {WHISPER: "encoder.", WAV2VEC2: ""}
CORE_SOURCE = "ComfyUI's audio encoder (AUDIO_ENCODER)"


def what_to_load() -> str:
    """The encoders LongCat can use, one per version, with their download pages."""
    return "; ".join(
        f"{spec.encoder_name} for LongCat-Video-Avatar {spec.version} ({spec.encoder_home})"
        for spec in VERSIONS.values()
    )


def core_state_to_transformers(kind: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The module-relative transformers state dict of a core encoder's `get_sd()` of `kind`."""
    if kind not in CORE_PREFIXES:
        raise AudioEncoderError(f"{CORE_SOURCE} is a {kind} model, not a wav2vec2 or Whisper speech encoder")
    found = detect_encoder_kind(state)
    if found != kind:
        raise AudioEncoderError(f"{CORE_SOURCE} is a {kind} model but its weights are those of a {found} encoder")
    prefix = CORE_PREFIXES[kind]
    return {name[len(prefix) :]: tensor for name, tensor in state.items() if name.startswith(prefix)}


def load_audio_encoder_from_core(
    state: dict[str, torch.Tensor],
    kind: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> AudioEncoder:
    """Our AudioEncoder with the weights of a core ComfyUI audio encoder (`get_sd()`) of `kind`."""
    local = core_state_to_transformers(kind, state)
    return build_audio_encoder(kind, local, device=device, dtype=dtype, source=CORE_SOURCE)
