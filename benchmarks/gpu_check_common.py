"""What the GPU check's sections share: the run context, progress lines, timing and memory measurement."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import torch

GB = 1e9
REPEATS = 3  # timed runs after one warm-up; the median is reported


def log(message: str) -> None:
    """A progress line with a UTC timestamp."""
    print(f"[{datetime.now(timezone.utc).isoformat(timespec='seconds')}] {message}", flush=True)


@dataclass
class Context:
    """The run's device and mode, the ComfyUI modules when importable, and results handed between sections."""

    device: torch.device
    tiny: bool
    comfy: Any = None  # SimpleNamespace(model_management, model_patcher, ops) when ComfyUI is importable
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        """True on a CUDA device (memory figures and caps exist only there)."""
        return self.device.type == "cuda"

    def sync(self) -> None:
        """Wait for the device (timings must include the queued work)."""
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        """Start a new peak-memory window."""
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gb(self) -> float | None:
        """Peak allocated device memory since reset_peak, in GB (None off CUDA)."""
        return torch.cuda.max_memory_allocated(self.device) / GB if self.cuda else None


def timed(ctx: Context, run: Callable[[], Any], repeats: int = REPEATS) -> tuple[Any, float, list[float]]:
    """(last result, median seconds, all seconds) of `run` after one untimed warm-up."""
    result = run()
    ctx.sync()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        ctx.sync()
        seconds.append(time.perf_counter() - start)
    return result, statistics.median(seconds), seconds


def rel_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||a - e|| / ||e|| in float64 on the CPU."""
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    return float((a - e).norm() / e.norm())


def finite(tensor: torch.Tensor) -> bool:
    """True when every element is finite."""
    return bool(torch.isfinite(tensor).all())
