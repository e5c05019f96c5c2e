"""job_progress: the phase, segment, steps and time left a job reports, computed from registry-like entries."""

from __future__ import annotations

import pytest

from longcat_avatar.job_progress import PHASES, JobProgress, NodeStep, SegmentSteps, job_progress, segment_at
from longcat_avatar.job_status import JobStatus
from longcat_avatar.workflow import COMBINE_NODE, DECODE_NODE, SAMPLER_NODE

TYPES = {"1": "LoadAudio", "2": "LongCatAvatarAudioEncode", "3": SAMPLER_NODE, "4": DECODE_NODE, "5": COMBINE_NODE}
PLAN = {"3": SegmentSteps((4, 14, 14), started_at=100.0)}  # a first segment of 4 steps, two continuations of 14


def entries(**states: tuple[str, float, float]) -> dict[str, NodeStep]:
    """Registry entries by node id (n1=..., n3=...)."""
    return {key.removeprefix("n"): NodeStep(*value) for key, value in states.items()}


@pytest.mark.parametrize(("done", "segment"), [(0, 1), (3, 1), (4, 2), (17, 2), (18, 3), (31, 3), (32, 3)])
def test_job_progress_segment_at_counts_whole_segments(done: int, segment: int) -> None:
    assert segment_at((4, 14, 14), done) == segment


def test_job_progress_encoding_before_the_sampler_starts() -> None:
    nodes = entries(n1=("finished", 1, 1), n2=("running", 0, 1), n3=("pending", 0, 1))
    assert job_progress(nodes, TYPES, {}, 200.0) == JobProgress("encoding")


def test_job_progress_sampling_reports_segment_steps_and_time_left() -> None:
    nodes = entries(n1=("finished", 1, 1), n2=("finished", 1, 1), n3=("running", 8, 32))
    progress = job_progress(nodes, TYPES, PLAN, now=116.0)  # 8 steps in 16 s: 2 s a step, 24 steps to go
    assert progress == JobProgress("sampling", 2, 3, 8, 32, 48.0)
    assert progress.describe() == "sampling segment 2 of 3, step 8 of 32, about 48 s left"


def test_job_progress_later_phases_keep_the_sampler_total() -> None:
    nodes = entries(n2=("finished", 1, 1), n3=("finished", 32, 32), n4=("running", 1, 3))
    assert job_progress(nodes, TYPES, PLAN, 300.0) == JobProgress("decoding", 3, 3, 32, 32, None)
    nodes["5"] = NodeStep("running", 0, 1)
    assert job_progress(nodes, TYPES, PLAN, 300.0).phase == "writing"


def test_job_progress_ranks_follow_the_phases_then_the_steps() -> None:
    ranks = [JobProgress(phase, steps_done=3).rank() for phase in PHASES]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(PHASES)
    assert JobProgress("sampling", steps_done=4).rank() > JobProgress("sampling", steps_done=3).rank()


def test_job_progress_json_round_trip_ignores_unknown_keys() -> None:
    progress = JobProgress("sampling", 1, 2, 3, 12, 7.5)
    assert JobProgress.from_json({**progress.as_json(), "newer_field": 1}) == progress
    status = JobStatus.from_json({"job_id": "a", "status": "running", "progress": progress.as_json()})
    assert status.describe() == "a: running, sampling segment 1 of 2, step 3 of 12, about 8 s left"
    assert not status.finished and JobStatus("a", "error", JobProgress(), error="boom").finished
