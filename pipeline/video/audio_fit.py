"""Prepare a ComfyUI AUDIO waveform for muxing: one batch item, 1-2 channels, an AAC sample rate, an exact length."""

from __future__ import annotations

from typing import Any

import numpy as np
import soxr
import torch

# Sample rates the AAC encoder accepts (MPEG-4 sampling-frequency table); other rates are resampled to 48 kHz.
AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
FALLBACK_SAMPLE_RATE = 48000  # the usual rate of video soundtracks


class AudioMuxError(ValueError):
    """The AUDIO input cannot be muxed (empty, no channels, bad sample rate)."""


def audio_dict_to_array(audio: dict[str, Any]) -> tuple[np.ndarray, int]:
    """First batch item of a ComfyUI AUDIO dict as float32 [channels (1 or 2), samples] in [-1, 1], and its rate."""
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise AudioMuxError("AUDIO must be a dict with 'waveform' [batch, channels, samples] and 'sample_rate'")
    waveform = torch.as_tensor(audio["waveform"]).detach().to("cpu", torch.float32)
    while waveform.dim() < 3:  # accept [samples] and [channels, samples] from lenient producers
        waveform = waveform.unsqueeze(0)
    if waveform.shape[0] == 0 or waveform.shape[1] == 0:
        raise AudioMuxError(f"AUDIO has no channel or no batch item (waveform shape {tuple(waveform.shape)})")
    rate = int(audio["sample_rate"])
    if rate <= 0:
        raise AudioMuxError(f"AUDIO sample rate must be positive, got {rate}")
    samples = waveform[0]
    if samples.shape[0] > 2:  # more than stereo: mix down to mono rather than guess a surround layout
        samples = samples.mean(dim=0, keepdim=True)
    array = np.nan_to_num(samples.numpy(), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(array, -1.0, 1.0).astype(np.float32), rate


def to_aac_rate(samples: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """Resample [channels, samples] to 48 kHz when AAC does not support `rate`; unchanged otherwise."""
    if rate in AAC_SAMPLE_RATES:
        return samples, rate
    if samples.shape[1] == 0:
        return samples, FALLBACK_SAMPLE_RATE
    resampled = soxr.resample(samples.T, rate, FALLBACK_SAMPLE_RATE, quality="HQ").T
    return np.ascontiguousarray(resampled, dtype=np.float32), FALLBACK_SAMPLE_RATE


def fit_to_duration(samples: np.ndarray, rate: int, duration_s: float) -> np.ndarray:
    """Trim or zero-pad [channels, samples] to exactly round(duration_s * rate) samples."""
    target = max(0, round(duration_s * rate))
    current = samples.shape[1]
    if current >= target:
        return np.ascontiguousarray(samples[:, :target])
    padding = np.zeros((samples.shape[0], target - current), dtype=samples.dtype)
    return np.concatenate([samples, padding], axis=1)
