"""Frame-rate conversion from the model's native rate to the user's output rate, keeping duration and sync.

Each output frame k is shown during [k/out, (k+1)/out); its content is taken from the source frame displayed at the
centre of that interval ("nearest"), or blended linearly from the two source frames around that instant ("blend").
The output has round(N * out / src) frames, so its duration equals the source duration within half an output frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import torch

FrameRateMode = Literal["nearest", "blend"]
FRAME_RATE_MODES: tuple[str, ...] = ("nearest", "blend")
COVER_SLACK_FRAMES = 1e-6  # the planner's frames_covering ignores float noise below a microframe; so does this


def output_frame_count(num_frames: int, source_fps: float, target_fps: float) -> int:
    """Number of output frames that keeps the duration num_frames / source_fps at target_fps."""
    _check_rates(source_fps, target_fps)
    if num_frames <= 0:
        return 0
    return max(1, round(num_frames * target_fps / source_fps))


def source_positions(num_frames: int, source_fps: float, target_fps: float, count: int | None = None) -> torch.Tensor:
    """Fractional source-frame position (in source frame units) at the centre of every output frame.

    `count` output frames (default: the duration-keeping count); frames past the source's end repeat its last one.
    """
    count = output_frame_count(num_frames, source_fps, target_fps) if count is None else count
    centres = (torch.arange(count, dtype=torch.float64) + 0.5) / target_fps  # seconds
    # Source frame i is centred at (i + 0.5) / source_fps, so position p means "between frames floor(p), ceil(p)".
    return (centres * source_fps - 0.5).clamp(0.0, max(num_frames - 1, 0))


def nearest_indices(num_frames: int, source_fps: float, target_fps: float, count: int | None = None) -> torch.Tensor:
    """Index of the source frame shown at the centre of every output frame."""
    positions = source_positions(num_frames, source_fps, target_fps, count)
    return torch.floor(positions + 0.5).long().clamp(0, max(num_frames - 1, 0))


def convert_frame_rate(
    frames: torch.Tensor,
    source_fps: float,
    target_fps: float,
    mode: FrameRateMode = "nearest",
    count: int | None = None,
) -> torch.Tensor:
    """Resample frames [N, H, W, C] from source_fps to target_fps on the same clock (frame k at time k / fps).

    By default the duration is kept; `count` asks for exactly that many output frames (e.g. to end with the audio).
    """
    if mode not in FRAME_RATE_MODES:
        raise ValueError(f"unknown frame-rate mode {mode!r}; use one of {FRAME_RATE_MODES}")
    _check_rates(source_fps, target_fps)
    num_frames = int(frames.shape[0])
    if num_frames == 0:
        return frames
    same_rate = math.isclose(source_fps, target_fps, rel_tol=0, abs_tol=1e-9)
    if same_rate and count in (None, num_frames):
        return frames
    if mode == "nearest" or same_rate:
        return frames[nearest_indices(num_frames, source_fps, target_fps, count).to(frames.device)]
    positions = source_positions(num_frames, source_fps, target_fps, count)
    low = torch.floor(positions).long()
    high = (low + 1).clamp(max=num_frames - 1)
    weight = (positions - low.double()).to(frames.dtype).to(frames.device).view(-1, *([1] * (frames.dim() - 1)))
    low, high = low.to(frames.device), high.to(frames.device)
    return frames[low] * (1 - weight) + frames[high] * weight


def iter_frame_rate(
    frames: torch.Tensor,
    source_fps: float,
    target_fps: float,
    mode: FrameRateMode = "nearest",
    count: int | None = None,
) -> Iterator[torch.Tensor]:
    """The frames of `convert_frame_rate`, one at a time, so a long video is never copied whole."""
    if mode not in FRAME_RATE_MODES:
        raise ValueError(f"unknown frame-rate mode {mode!r}; use one of {FRAME_RATE_MODES}")
    num_frames = int(frames.shape[0])
    if num_frames == 0:
        return
    for position in source_positions(num_frames, source_fps, target_fps, count).tolist():
        low = math.floor(position)
        weight = position - low
        if mode == "nearest" or weight < 1e-9:  # 1e-9 of a frame: the position is a source frame itself
            yield frames[min(math.floor(position + 0.5), num_frames - 1)]
        else:
            yield frames[low] * (1 - weight) + frames[min(low + 1, num_frames - 1)] * weight


def fit_to_audio_count(num_frames: int, source_fps: float, target_fps: float, audio_s: float | None) -> int:
    """Output frame count: the audio's duration when the frames were made to cover it, else the frames' own duration.

    The sampler covers the audio with whole native frames, so its video outlasts the audio by less than one native
    frame; ending the output with the audio (instead of that fraction) keeps frame count = audio duration x fps.
    A video shorter than its audio (the segment planner dropped a tail of a frame or two, see
    pipeline/sampling/segments.py) keeps its own duration, and Video Combine trims the audio to it; so do frames that
    outlast the audio by more than a native frame.
    """
    own = output_frame_count(num_frames, source_fps, target_fps)
    if audio_s is None:
        return own
    overhang = num_frames - audio_s * source_fps  # native frames the video outlasts the audio by
    if not -COVER_SLACK_FRAMES <= overhang <= 1:
        return own
    return max(1, round(audio_s * target_fps))


def _check_rates(source_fps: float, target_fps: float) -> None:
    if not (source_fps > 0 and target_fps > 0 and math.isfinite(source_fps) and math.isfinite(target_fps)):
        raise ValueError(f"frame rates must be positive numbers, got source {source_fps} and target {target_fps}")
