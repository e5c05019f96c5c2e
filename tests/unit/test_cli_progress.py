"""Progress: ComfyUI's /ws messages become events, failures become readable errors, the bar follows the steps."""

from __future__ import annotations

import io

import pytest

from longcat_avatar.errors import GenerationError
from longcat_avatar.progress import ProgressBar, ProgressEvent, event_from_message, raise_for_failure

WORKFLOW = {"10": {"class_type": "LongCatAvatarSampler", "inputs": {}}, "12": {"class_type": "SaveVideo", "inputs": {}}}


def test_messages_become_events() -> None:
    def event(kind: str, **data: object) -> ProgressEvent | None:
        return event_from_message({"type": kind, "data": {"prompt_id": "p", **data}}, WORKFLOW)

    assert event("execution_start") == ProgressEvent("started")
    assert event("executing", node="10") == ProgressEvent("node", "10", "LongCatAvatarSampler")
    assert event("executing", node=None) is None  # ComfyUI's "prompt finished" marker carries no node
    assert event("progress", node="10", value=3, max=8) == ProgressEvent("progress", "10", "LongCatAvatarSampler", 3, 8)
    assert event("execution_cached", nodes=["1", "2"]) == ProgressEvent("cached", value=2)
    assert event("execution_cached", nodes=[]) is None
    assert event("execution_success") is None  # `done` comes from follow_prompt, once, however the end is learned
    assert event("status") is None


def test_failures_are_readable() -> None:
    error = {"type": "execution_error", "data": {"node_id": "6", "node_type": "LoadAudio",
                                                  "exception_type": "ValueError", "exception_message": "bad file"}}  # fmt: skip
    with pytest.raises(GenerationError, match=r"node 6 \(LoadAudio\): ValueError: bad file"):
        raise_for_failure(error)
    with pytest.raises(GenerationError, match="interrupted"):
        raise_for_failure({"type": "execution_interrupted", "data": {}})
    raise_for_failure({"type": "progress", "data": {}})  # anything else passes


def test_bar_follows_the_sampler_steps() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream=stream, label="[1] ")
    bar(ProgressEvent("node", "10", "LongCatAvatarSampler"))
    for step in range(1, 9):
        bar(ProgressEvent("progress", "10", "LongCatAvatarSampler", step, 8))
    bar(ProgressEvent("node", "12", "SaveVideo"))
    bar(ProgressEvent("done"))
    text = stream.getvalue()
    assert "[1] running Sampler" in text and "[1] running SaveVideo" in text
    assert "[1] Sampler: 100%" in text and "8/8" in text
    assert text.index("8/8") < text.index("running SaveVideo")
