"""Audio conditioning for LongCat-Video-Avatar: ComfyUI AUDIO -> 16 kHz -> wav2vec2 (v1.0) / Whisper (v1.5) features.

The names below are imported on first use, so that `pipeline.audio.types` (what the sampler needs) does not pull in
soxr, pyloudnorm or transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AudioEncoder": "encoders",
    "load_audio_encoder": "encoders",
    "load_audio_encoder_from_state_dict": "encoders",
    "AudioEncoderError": "errors",
    "AudioInputError": "errors",
    "compute_audio_features": "features",
    "embed_speech": "features",
    "prepare_track": "features",
    "compute_multi_speaker_features": "multi_speaker",
    "merge_for_muxing": "multi_speaker",
    "resize_speaker_masks": "speaker_masks",
    "speaker_masks_from_boxes": "speaker_masks",
    "speaker_masks_from_tensors": "speaker_masks",
    "AudioFeatures": "types",
    "version_spec": "types",
    "gather_windows": "windows",
    "window_indices": "windows",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodule that defines `name` when it is first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
