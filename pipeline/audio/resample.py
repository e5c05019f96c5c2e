"""Resampling exactly as the reference's `librosa.load(path, sr=...)` does it (to 16 kHz, or 44.1 kHz for MDX-Net)."""

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


def resample_like_librosa(samples: np.ndarray, source_rate: float, target_rate: float) -> np.ndarray:
    """Resample float32 `[..., samples]` channel by channel with soxr "HQ", then zero-pad/trim to librosa's length."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if float(source_rate) == float(target_rate):
        return samples
    size = resampled_length(samples.shape[-1], source_rate, target_rate)
    flat = samples.reshape(-1, samples.shape[-1])
    out = np.zeros((flat.shape[0], size), dtype=np.float32)
    for channel, track in enumerate(flat):  # librosa applies soxr along the time axis, one channel at a time
        resampled = soxr.resample(track, float(source_rate), float(target_rate), quality=SOXR_QUALITY)
        out[channel, : min(size, len(resampled))] = resampled[:size]
    return out.reshape(*samples.shape[:-1], size)


def resample_to_16k(samples: np.ndarray, source_rate: float) -> np.ndarray:
    """Resample a mono float32 track to 16 kHz as librosa.load(sr=16000) does."""
    return resample_like_librosa(samples, source_rate, ENCODER_SAMPLE_RATE)
