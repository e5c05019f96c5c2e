"""A job's progress from ComfyUI's own progress state (comfy_execution.progress) and the sampler's report in it."""

from __future__ import annotations

import time
from typing import Any

from ..longcat_avatar.job_progress import JobProgress, job_progress
from ..nodes.progress_report import read_registry


def class_types(prompt: dict[str, Any]) -> dict[str, str]:
    """Node id -> class type of an API-format prompt."""
    return {str(node_id): str(node.get("class_type", "")) for node_id, node in prompt.items() if isinstance(node, dict)}


def current_progress(prompt_id: str, nodes: dict[str, str], last: JobProgress) -> JobProgress:
    """The running prompt's progress now; `last` while the registry holds another prompt (ComfyUI has not reset it
    for ours yet, or has moved on), or when the new reading is not further along (progress never goes back)."""
    snapshot = read_registry(prompt_id)
    if snapshot is None:
        return last
    states, plans = snapshot
    now = job_progress(states, nodes, plans, time.monotonic())
    return now if now.rank() >= last.rank() else last
