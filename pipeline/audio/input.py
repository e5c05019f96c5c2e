"""Validate a ComfyUI AUDIO dict and mix it to one mono float32 track, as `librosa.load(mono=True)` does."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .errors import AudioInputError

# Below this rate a track cannot carry speech; such a value is almost surely a mistake (e.g. a rate in kHz).
MIN_SAMPLE_RATE = 1000


def _as_numpy(waveform: Any) -> np.ndarray:
    """The waveform as a float32 numpy array on the CPU (torch tensors of any dtype/device accepted)."""
    if isinstance(waveform, torch.Tensor):
        return waveform.detach().to(device="cpu", dtype=torch.float32).numpy()
    try:
        return np.asarray(waveform, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise AudioInputError(f"AUDIO 'waveform' is not a numeric array ({type(waveform).__name__})") from exc


def _check_sample_rate(sample_rate: Any) -> float:
    """Return the sample rate as a number, or raise AudioInputError for a missing, non-finite or absurd rate."""
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError) as exc:
        raise AudioInputError(
            f"AUDIO 'sample_rate' must be a number of samples per second, got {sample_rate!r}"
        ) from exc
    if not math.isfinite(rate) or rate < MIN_SAMPLE_RATE:
        raise AudioInputError(
            f"AUDIO 'sample_rate' is {sample_rate!r}; it must be at least {MIN_SAMPLE_RATE} Hz (typical: 16000, 44100)"
        )
    return rate


def _to_batch_channels_samples(array: np.ndarray) -> np.ndarray:
    """Reshape [samples] or [channels, samples] to ComfyUI's [batch, channels, samples]; reject other ranks."""
    if array.ndim == 1:
        return array[None, None, :]
    if array.ndim == 2:
        return array[None, :, :]
    if array.ndim == 3:
        return array
    raise AudioInputError(
        f"AUDIO 'waveform' has shape {tuple(array.shape)}; expected [batch, channels, samples] as ComfyUI's LoadAudio gives"
    )


def audio_channels(audio: Mapping[str, Any]) -> tuple[np.ndarray, float]:
    """Check a ComfyUI AUDIO dict and return (float32 samples [channels, samples], sample rate).

    Accepted: `waveform` [batch=1, channels>=1, samples>=1] (also [channels, samples] or [samples]) of finite
    values, `sample_rate` >= 1000 Hz. All-silent audio is valid (it conditions a silent speaker). A batch of
    several clips is refused: connect one clip per speaker instead.
    """
    if not isinstance(audio, Mapping) or "waveform" not in audio or "sample_rate" not in audio:
        raise AudioInputError("expected a ComfyUI AUDIO input: a dict with 'waveform' and 'sample_rate'")
    rate = _check_sample_rate(audio["sample_rate"])
    wave = _to_batch_channels_samples(_as_numpy(audio["waveform"]))
    batch, channels, samples = wave.shape
    if batch != 1:
        raise AudioInputError(f"AUDIO holds a batch of {batch} clips; connect exactly one clip per speaker")
    if channels == 0:
        raise AudioInputError("AUDIO has no channels (waveform shape [1, 0, samples])")
    if samples == 0:
        raise AudioInputError("AUDIO is empty (0 samples)")
    if not np.isfinite(wave).all():
        raise AudioInputError("AUDIO contains NaN or infinite samples; re-export or re-decode the audio file")
    return np.ascontiguousarray(wave[0], dtype=np.float32), rate


def audio_to_mono(audio: Mapping[str, Any]) -> tuple[np.ndarray, float]:
    """Check a ComfyUI AUDIO dict (as `audio_channels`) and return (mono float32 samples, sample rate)."""
    channels, rate = audio_channels(audio)
    # librosa.load(mono=True) averages the channels in float32 before resampling; do the same.
    mono = np.mean(channels, axis=0, dtype=np.float32) if len(channels) > 1 else channels[0]
    return np.ascontiguousarray(mono, dtype=np.float32), rate
