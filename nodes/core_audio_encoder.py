"""ComfyUI's own AUDIO_ENCODER (core Load Audio Encoder) on Audio Encode's input, turned into our encoder.

Only the core object's weights are used (`get_sd()`); its `encode_audio` resamples with torchaudio and computes its
own log-mel, which is not what the reference feeds the model.
"""

from __future__ import annotations

from typing import Any

import torch
from comfy.audio_encoders.wav2vec2 import Wav2Vec2Model
from comfy.audio_encoders.whisper import WhisperLargeV3

from ..pipeline.audio.core_encoders import load_audio_encoder_from_core, what_to_load
from ..pipeline.audio.encoder_files import WAV2VEC2, WHISPER
from ..pipeline.audio.errors import AudioEncoderError
from .managed import audio_encoder_offload_device, manage_audio_encoder
from .payloads import AudioEncoderHandle

# The core modules (comfy/audio_encoders/audio_encoders.py builds one of these) and the kind of encoder each is.
CORE_KINDS = ((WhisperLargeV3, WHISPER), (Wav2Vec2Model, WAV2VEC2))
# The reference runs its audio encoder in fp32, and so does ComfyUI's own encode_audio (manual_cast ops compute in
# the fp32 input's dtype, whatever the fp16 weights); our loader's default dtype is fp32 as well.
CORE_COMPUTE_DTYPE = torch.float32


def core_encoder_kind(core: Any) -> str:
    """WHISPER or WAV2VEC2 for the core encoder's module, else the module's class name (which is then refused)."""
    model = core.model
    return next((kind for module, kind in CORE_KINDS if isinstance(model, module)), type(model).__name__)


def encoder_handle(value: Any, input_name: str) -> AudioEncoderHandle:
    """Our encoder as it is, or a core AUDIO_ENCODER rebuilt as ours from its weights, under ComfyUI's memory manager."""
    if isinstance(value, AudioEncoderHandle):
        return value
    if not callable(getattr(value, "get_sd", None)) or not hasattr(value, "model"):
        raise ValueError(
            f"{input_name}: expected an audio encoder from LongCat Avatar Audio Encoder Loader or ComfyUI's "
            f"Load Audio Encoder, got {type(value).__name__}"
        )
    try:
        encoder = load_audio_encoder_from_core(
            value.get_sd(), core_encoder_kind(value), device=audio_encoder_offload_device(), dtype=CORE_COMPUTE_DTYPE
        )
    except AudioEncoderError as error:
        raise ValueError(
            f"{input_name}: {error}. Load one of these instead (Load Audio Encoder or LongCat Avatar Audio Encoder "
            f"Loader): {what_to_load()}"
        ) from error
    name = f"ComfyUI AUDIO_ENCODER ({type(value.model).__name__})"
    return AudioEncoderHandle(encoder, name, patcher=manage_audio_encoder(encoder))
