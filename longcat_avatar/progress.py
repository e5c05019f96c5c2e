"""What a running generation reports: events built from ComfyUI's WebSocket messages, and a tqdm bar for them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from .errors import GenerationError


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a generation: kind is queued, started, node, progress, cached or done."""

    kind: str
    node_id: str | None = None
    class_type: str | None = None
    value: int = 0
    maximum: int = 0


ProgressCallback = Callable[[ProgressEvent], None]


def event_from_message(message: dict[str, Any], workflow: dict[str, Any]) -> ProgressEvent | None:
    """The event of one /ws message of our prompt (None for messages that say nothing new)."""
    kind, data = message.get("type"), message.get("data") or {}
    node = data.get("node") or data.get("display_node")
    class_type = workflow.get(str(node), {}).get("class_type") if node is not None else None
    if kind == "execution_start":
        return ProgressEvent("started")
    if kind == "executing" and node is not None:
        return ProgressEvent("node", str(node), class_type)
    if kind == "progress":
        return ProgressEvent("progress", str(node), class_type, int(data.get("value", 0)), int(data.get("max", 0)))
    if kind == "execution_cached" and data.get("nodes"):
        return ProgressEvent("cached", value=len(data["nodes"]))
    return None  # execution_success included: follow_prompt reports `done` once, however it learns of the end


def raise_for_failure(message: dict[str, Any]) -> None:
    """Raise GenerationError for an execution_error / execution_interrupted message."""
    kind, data = message.get("type"), message.get("data") or {}
    if kind == "execution_error":
        where = f"node {data.get('node_id')} ({data.get('node_type')})"
        raise GenerationError(
            f"ComfyUI failed in {where}: {data.get('exception_type')}: {data.get('exception_message')}"
        )
    if kind == "execution_interrupted":
        raise GenerationError("the generation was interrupted on the server (Cancel or POST /interrupt)")


class ProgressBar:
    """A terminal progress bar (tqdm) following the events; a new bar per node that reports steps."""

    def __init__(self, stream: TextIO | None = None, label: str = "") -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self._bar: Any = None
        self._node: str | None = None
        self._names: dict[str, str] = {}

    def __call__(self, event: ProgressEvent) -> None:
        """Update the bar for one event."""
        if event.kind == "node":
            self._names[str(event.node_id)] = _short(event.class_type)
            self._write(f"{self.label}running {_short(event.class_type)}")
        elif event.kind == "progress" and event.maximum > 0:
            if self._bar is None or self._node != event.node_id or self._bar.total != event.maximum:
                self._open(event)
            self._bar.n = event.value
            self._bar.refresh()
        elif event.kind == "done":
            self.close()

    def _open(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        self.close()
        self._node = event.node_id
        name = self._names.get(str(event.node_id), _short(event.class_type))
        self._bar = tqdm(total=event.maximum, desc=f"{self.label}{name}", file=self.stream, unit="step", leave=True)

    def _write(self, text: str) -> None:
        if self._bar is not None:
            self.close()
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the current bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _short(class_type: str | None) -> str:
    """A node class without the pack prefix, for display."""
    name = class_type or "node"
    return name.removeprefix("LongCatAvatar") or name
