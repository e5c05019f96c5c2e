"""The pack's report in ComfyUI's progress registry (comfy_execution.progress): the sampler publishes each segment's
step count there, and the job route reads it beside the nodes' own progress entries.

The report is a ProgressHandler registered with ComfyUI's public `add_progress_handler`: it lives in the registry of
the prompt that runs and is dropped with it when the next prompt starts, so nothing outlives its prompt.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from comfy_execution.progress import ProgressHandler, add_progress_handler, get_progress_state
from comfy_execution.utils import get_executing_context

from ..longcat_avatar.job_progress import NodeStep, SegmentSteps

REPORT_NAME = "longcat_avatar_segments"


class SegmentReport(ProgressHandler):
    """Holds the sampler plans of the running prompt; displays nothing (the web UI and CLI bars are ComfyUI's)."""

    def __init__(self) -> None:
        super().__init__(REPORT_NAME)
        self.plans: dict[str, SegmentSteps] = {}


def publish_segments(segment_steps: Sequence[int]) -> None:
    """Record, for the node that runs now, its segments' step counts and the time its sampling began."""
    context = get_executing_context()
    registry = get_progress_state()
    if context is None or registry.prompt_id != context.prompt_id:
        return  # outside a prompt (a direct call in a script): there is no job to report on
    report = registry.handlers.get(REPORT_NAME)
    if not isinstance(report, SegmentReport):
        report = SegmentReport()
        add_progress_handler(report)
    report.plans[context.node_id] = SegmentSteps(tuple(int(n) for n in segment_steps), time.monotonic())


def read_registry(prompt_id: str) -> tuple[dict[str, NodeStep], dict[str, SegmentSteps]] | None:
    """The nodes' progress entries and the sampler plans of `prompt_id`; None when the registry holds another prompt.

    Called from the server's event loop while the prompt runs in ComfyUI's worker thread: dict.copy() is one atomic
    step under the GIL, so the worker adding an entry meanwhile cannot break the read.
    """
    registry = get_progress_state()
    if registry.prompt_id != prompt_id:
        return None
    nodes = {
        node_id: NodeStep(
            str(getattr(entry["state"], "value", entry["state"])), float(entry["value"]), float(entry["max"])
        )
        for node_id, entry in registry.nodes.copy().items()
    }
    report = registry.handlers.get(REPORT_NAME)
    plans = dict(report.plans.copy()) if isinstance(report, SegmentReport) else {}
    return nodes, plans
