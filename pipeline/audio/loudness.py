"""Loudness normalisation to -23 LUFS (ITU-R BS.1770 through pyloudnorm), skipped for silence like the reference."""

from __future__ import annotations

import warnings

import numpy as np
import pyloudnorm

from .types import ENCODER_SAMPLE_RATE

# EBU R128 programme loudness; the reference normalises every track to it before feature extraction.
TARGET_LUFS = -23.0
# The reference leaves audio unchanged when |measured loudness| exceeds 100 LU: silence measures -inf (or -70-ish
# gated values), and normalising it would amplify nothing but noise.
SKIP_THRESHOLD_LU = 100.0
# pyloudnorm's gating block is 400 ms; shorter audio cannot be measured.
MEASURE_BLOCK_S = 0.4


def measure_loudness(samples: np.ndarray, sample_rate: int = ENCODER_SAMPLE_RATE) -> float:
    """Integrated loudness in LUFS (-inf for silence); audio shorter than one 400 ms block counts as unmeasurable."""
    if len(samples) < MEASURE_BLOCK_S * sample_rate:
        return float("-inf")
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(samples))


def normalize_loudness(
    samples: np.ndarray, sample_rate: int = ENCODER_SAMPLE_RATE, target_lufs: float = TARGET_LUFS
) -> np.ndarray:
    """Scale the track to `target_lufs`; return it unchanged when its loudness is beyond ±100 LU (silence)."""
    loudness = measure_loudness(samples, sample_rate)
    if not np.isfinite(loudness) or abs(loudness) > SKIP_THRESHOLD_LU:
        return samples
    with warnings.catch_warnings():
        # pyloudnorm warns when a float sample exceeds ±1 after the gain; nothing is clipped in float, so stay quiet.
        warnings.filterwarnings("ignore", message="Possible clipped samples")
        return pyloudnorm.normalize.loudness(samples, loudness, target_lufs)
