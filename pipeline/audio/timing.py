"""The audio clock: how far the reference pads the speech for a generation, and how many feature steps it has."""

from __future__ import annotations

import math

import numpy as np

from ..sampling.segments import NEW_FRAMES_PER_SEGMENT, SEGMENT_FRAMES


def generation_duration_s(num_video_frames: int, fps: int) -> float:
    """Duration of `num_video_frames` frames, evaluated with the reference's float expression when it is segmental.

    The demos compute 93/fps + (n−1)·80/fps; in floating point that can exceed num_frames/fps by one ulp, which
    changes the padding by one sample. Using the same expression keeps the padded length bit-identical.
    """
    extra = int(num_video_frames) - SEGMENT_FRAMES
    if extra >= 0 and extra % NEW_FRAMES_PER_SEGMENT == 0:
        segments_after_first = extra // NEW_FRAMES_PER_SEGMENT
        return SEGMENT_FRAMES / fps + segments_after_first * NEW_FRAMES_PER_SEGMENT / fps
    return num_video_frames / fps


def pad_to_duration(samples: np.ndarray, duration_s: float, sample_rate: int) -> np.ndarray:
    """Append zeros so the track lasts at least `duration_s` (the reference's ceil rule); never truncate."""
    missing = math.ceil((duration_s - len(samples) / sample_rate) * sample_rate)
    if missing <= 0:
        return samples
    return np.concatenate([samples, np.zeros(missing, dtype=samples.dtype)])


def num_feature_steps(num_samples: int, sample_rate: int, feature_rate: int) -> int:
    """Feature steps of a track: int(duration · rate), with the reference's float evaluation order."""
    duration = num_samples / sample_rate
    return int(duration * feature_rate)
