"""Resampling to the encoders' 16 kHz exactly as the reference's `librosa.load(path, sr=16000)` does it."""

from __future__ import annotations

import math

import numpy as np
import soxr

from .types import ENCODER_SAMPLE_RATE

# librosa's default `res_type` is "soxr_hq": the soxr library at its "HQ" quality preset.
SOXR_QUALITY = "HQ"


def resampled_length(num_samples: int, source_rate: float, target_rate: float = ENCODER_SAMPLE_RATE) -> int:
    """Output length librosa.resample fixes the result to: ceil(num_samples * target / source)."""
    return int(math.ceil(num_samples * (float(target_rate) / source_rate)))


def resample_to_16k(samples: np.ndarray, source_rate: float) -> np.ndarray:
    """Resample a mono float32 track to 16 kHz with soxr "HQ", then zero-pad/trim to librosa's length."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if float(source_rate) == ENCODER_SAMPLE_RATE:
        return samples
    out = soxr.resample(samples, float(source_rate), ENCODER_SAMPLE_RATE, quality=SOXR_QUALITY)
    size = resampled_length(len(samples), source_rate)
    if len(out) < size:
        out = np.pad(out, (0, size - len(out)))
    return np.ascontiguousarray(out[:size], dtype=np.float32)
