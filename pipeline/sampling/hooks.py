"""Progress reporting and cancellation for the sampler: plain callbacks, no UI framework."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

ProgressFn = Callable[[int, int, "torch.Tensor | None"], None]
StopFn = Callable[[], bool]
PlanFn = Callable[[tuple[int, ...]], None]
PrepareFn = Callable[[str], None]  # prepare(phase): make the models of "first_segment", "continuation_segment" or
# "decode" ready on the device (a memory manager loads them and frees room for the phase's activations)


class Interrupted(RuntimeError):
    """Raised between model calls when `should_stop()` returned True."""


@dataclass
class SamplerHooks:
    """`progress(step, total, preview_latents_or_None)` after every denoising step; `should_stop()` before each DiT call;
    `prepare(phase)` before each segment ("first_segment", "continuation_segment") and each decode ("decode").

    `total` is the sum of the real schedule lengths of every segment, so one bar covers the whole video;
    `on_plan(segment_steps)` learns those lengths, one per segment, before the first step.
    """

    progress: ProgressFn | None = None
    should_stop: StopFn | None = None
    on_plan: PlanFn | None = None
    prepare: PrepareFn | None = None
    total: int = 0
    done: int = field(default=0)

    def plan(self, segment_steps: tuple[int, ...]) -> None:
        """Set the total from each segment's step count and tell `on_plan`."""
        self.total = sum(segment_steps)
        if self.on_plan is not None:
            self.on_plan(segment_steps)

    def check(self) -> None:
        """Raise Interrupted if the caller asked to stop."""
        if self.should_stop is not None and self.should_stop():
            raise Interrupted(f"sampling interrupted after {self.done} of {self.total} steps")

    def enter(self, phase: str) -> None:
        """Announce the next phase to the `prepare` callback (nothing without one)."""
        if self.prepare is not None:
            self.prepare(phase)

    def step(self, preview: torch.Tensor | None = None) -> None:
        """Count one finished denoising step and report it."""
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, preview)
