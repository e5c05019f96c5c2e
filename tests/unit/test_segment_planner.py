"""The segment planner over every duration and frame rate: minimal segments, no segment made to be trimmed away, and
an MP4 whose picture and sound last the same (a dense deterministic sweep; hypothesis is not in the test env)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from pipeline.sampling.segments import (
    MAX_DROPPED_TAIL_FRAMES,
    OVERLAP_FRAMES,
    SEGMENT_FRAMES,
    frames_covering,
    plan_segments,
    segment_frames_total,
)
from pipeline.video.audio_fit import fit_to_duration
from pipeline.video.framerate import fit_to_audio_count

FRAME_RATES = (*range(15, 31), 23.976, 29.97)  # the planner works on any clock; the models run at 16 and 25 fps
MIN_S, MAX_S = 0.3, 180.0
NOISE = 1e-6  # frames: float noise of duration x fps that frames_covering ignores


def durations(fps: float) -> Iterator[float]:
    """Every 20 ms from 0.3 s to 180 s, plus the durations around each segment boundary (±1 ms, +1..3 frames)."""
    yield from np.arange(MIN_S, MAX_S + 1e-9, 0.02).tolist()
    for segments in range(1, 60):
        edge = segment_frames_total(segments, SEGMENT_FRAMES, OVERLAP_FRAMES) / fps
        for offset in (-1e-3, 0.0, 1e-3, 1 / fps, 2 / fps, 3 / fps, 2.5 / fps):
            if MIN_S <= edge + offset <= MAX_S:
                yield edge + offset


def check_plan(duration: float, fps: float) -> None:
    """The planner's promises for one duration at one frame rate."""
    audio_frames = frames_covering(duration, fps)
    plan = plan_segments(audio_frames)
    n, kept = plan.num_segments, plan.output_frames
    assert plan.generated_frames == segment_frames_total(n, SEGMENT_FRAMES, OVERLAP_FRAMES)
    # At most a frame or two of the audio's end gets no video; otherwise the video covers all of it.
    assert 0 <= plan.dropped_frames <= MAX_DROPPED_TAIL_FRAMES and kept == min(audio_frames, plan.generated_frames)
    # Minimal: one segment fewer would leave more than the tolerated tail without video.
    assert (
        n == 1 or segment_frames_total(n - 1, SEGMENT_FRAMES, OVERLAP_FRAMES) < audio_frames - MAX_DROPPED_TAIL_FRAMES
    )
    # No segment only to be trimmed away: the last continuation keeps more than a frame or two of new video.
    assert n == 1 or kept - segment_frames_total(n - 1, SEGMENT_FRAMES, OVERLAP_FRAMES) > MAX_DROPPED_TAIL_FRAMES
    # Video Combine at the native rate: frames = audio x fps (+1 at most) when nothing was dropped, else the video's
    # own length, and the soundtrack is cut to it.
    count = fit_to_audio_count(kept, fps, fps, duration)
    if plan.dropped_frames:
        assert count == kept and 0 < duration * fps - count <= MAX_DROPPED_TAIL_FRAMES + NOISE
    else:
        assert count == max(1, round(duration * fps)) and abs(count - duration * fps) <= 1


@pytest.mark.parametrize("fps", FRAME_RATES)
def test_every_duration_gets_minimal_segments_and_a_matching_soundtrack(fps: float) -> None:
    checked = 0
    for duration in durations(fps):
        check_plan(duration, fps)
        checked += 1
    assert checked > 8_900  # the sweep really ran over the whole range


@pytest.mark.parametrize(
    ("seconds", "segments", "frames", "dropped"),
    [
        (3.72, 1, 93, 0),  # exactly one segment
        (3.76, 1, 93, 1),  # 94 frames: a second segment for one frame is not generated
        (3.80, 1, 93, 2),  # 95 frames: nor for two
        (3.84, 2, 96, 0),  # 96 frames: three new frames are worth a segment
        (6.92, 2, 173, 0),  # two whole segments
        (7.00, 2, 173, 2),  # 175 frames
        (0.3, 1, 8, 0),  # short audio: one segment, trimmed (the model makes nothing shorter)
    ],
)
def test_the_tail_of_a_frame_or_two_is_planned_away(seconds: float, segments: int, frames: int, dropped: int) -> None:
    plan = plan_segments(frames_covering(seconds, 25))
    assert (plan.num_segments, plan.output_frames, plan.dropped_frames) == (segments, frames, dropped)


@pytest.mark.parametrize("output_fps", [25.0, 30.0, 15.0])
def test_the_mp4_of_a_dropped_tail_has_picture_and_sound_of_one_length(output_fps: float) -> None:
    """3.76 s at 25 fps: 93 frames are made; Video Combine cuts the 48 kHz speech to them at any output rate."""
    rate, seconds = 48000, 3.76
    plan = plan_segments(frames_covering(seconds, 25))
    count = fit_to_audio_count(plan.output_frames, 25, output_fps, seconds)
    assert count == round(93 * output_fps / 25)
    soundtrack = fit_to_duration(np.ones((2, round(seconds * rate)), np.float32), rate, count / output_fps)
    assert soundtrack.shape == (2, round(count / output_fps * rate)) and soundtrack.min() == 1  # cut, not padded
