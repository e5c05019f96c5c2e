"""How far a job is: its phase, the sampler's segment and steps, and the time left, from ComfyUI's progress state.

Pure data and arithmetic, shared by the server (which reads ComfyUI's progress registry) and the client (which reads
the JSON the server sends): no ComfyUI import here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .workflow import COMBINE_NODE, DECODE_NODE, SAMPLER_NODE

PHASES = ("queued", "encoding", "sampling", "decoding", "writing", "done")  # in the order a job goes through them
NODE_PHASES = {SAMPLER_NODE: "sampling", DECODE_NODE: "decoding", COMBINE_NODE: "writing"}  # other nodes: encoding
STARTED_STATES = ("running", "finished", "error")  # ComfyUI's NodeState values of a node that began (or was cached)


@dataclass(frozen=True)
class NodeStep:
    """One node's entry in ComfyUI's progress registry (comfy_execution.progress.NodeProgressState)."""

    state: str
    value: float
    maximum: float


@dataclass(frozen=True)
class SegmentSteps:
    """What a sampler published before its first step: each segment's step count, and when it began."""

    steps: tuple[int, ...]
    started_at: float  # time.monotonic() of the server process


@dataclass(frozen=True)
class JobProgress:
    """A job's progress as the status route reports it; the sampler's fields stay None until it publishes them."""

    phase: str = "queued"
    segment: int | None = None
    segments: int | None = None
    steps_done: int | None = None
    steps_total: int | None = None
    time_left_s: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON object of the status route."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> JobProgress:
        """Read the status route's object back (unknown keys are ignored, so newer servers still parse)."""
        data = data or {}
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def rank(self) -> tuple[int, int]:
        """An order of progress: later phases, then more steps, rank higher (never lower as a job runs)."""
        return PHASES.index(self.phase), self.steps_done or 0

    def describe(self) -> str:
        """One line for a terminal, e.g. `sampling segment 2 of 3, step 12 of 30, about 40 s left`."""
        text = self.phase
        if self.phase == "sampling" and self.segment is not None:
            text += f" segment {self.segment} of {self.segments}"
        if self.steps_total and self.phase != "done":
            text += f", step {self.steps_done or 0} of {self.steps_total}"
        if self.time_left_s is not None and self.phase == "sampling":
            text += f", about {math.ceil(self.time_left_s)} s left"
        return text


def segment_at(steps: tuple[int, ...], done: int) -> int:
    """The 1-based segment that step `done + 1` belongs to (the last one once every step is done)."""
    finished, boundary = 0, 0
    for count in steps:
        boundary += count
        if done < boundary:
            break
        finished += 1
    return min(finished + 1, len(steps))


def phase_of(nodes: Mapping[str, NodeStep], class_types: Mapping[str, str]) -> str:
    """The latest phase among the nodes that began (ComfyUI runs them in graph order, so it only moves forward)."""
    started = [
        NODE_PHASES.get(class_types.get(node_id, ""), "encoding")
        for node_id, step in nodes.items()
        if step.state in STARTED_STATES
    ]
    return max(started, key=PHASES.index, default="encoding")


def sampler_progress(
    nodes: Mapping[str, NodeStep], class_types: Mapping[str, str], plans: Mapping[str, SegmentSteps], now: float
) -> JobProgress:
    """Segment, steps and time left of the prompt's sampler (the fields stay None before it published its plan)."""
    sampler = next((node_id for node_id in plans if class_types.get(node_id) == SAMPLER_NODE), None)
    if sampler is None:
        return JobProgress()
    plan, step = plans[sampler], nodes.get(sampler)
    total = sum(plan.steps)
    done = total if step is not None and step.state == "finished" else int(step.value if step else 0)
    done = min(done, total)
    elapsed = now - plan.started_at
    time_left = elapsed / done * (total - done) if done else None  # the average pace so far; unknown before a step
    segment = segment_at(plan.steps, done)
    return JobProgress("sampling", segment, len(plan.steps), done, total, time_left)


def job_progress(
    nodes: Mapping[str, NodeStep], class_types: Mapping[str, str], plans: Mapping[str, SegmentSteps], now: float
) -> JobProgress:
    """The progress of a running prompt from its registry entries, its nodes' class types and its samplers' plans."""
    sampling = sampler_progress(nodes, class_types, plans, now)
    phase = phase_of(nodes, class_types)
    time_left = sampling.time_left_s if phase == "sampling" else None  # only the sampler's pace is known
    return JobProgress(phase, sampling.segment, sampling.segments, sampling.steps_done, sampling.steps_total, time_left)
