"""Benchmark reports: each names its date, the commit it measured and the machine it ran on.

Reports of full-size runs are committed under benchmarks/results/ (one JSON file per run).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def git_commit() -> str | None:
    """The repository's commit, when it is a git checkout."""
    try:
        run = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return run.stdout.strip() or None


def _proc_field(path: str, name: str) -> str | None:
    """The value of the first `name: value` line of a /proc file (None off Linux)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(name)), None)


def machine() -> dict[str, Any]:
    """The CPU, its cores, the memory and the software a benchmark ran with."""
    import torch

    memory_kb = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "host": platform.node(),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": round(int(memory_kb.split()[0]) / 2**20, 1) if memory_kb else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def write_report(name: str, figures: dict[str, Any], folder: Path = RESULTS_DIR) -> Path:
    """Write `<date>_<name>.json` in `folder` with the run's date, commit and machine; returns its path."""
    now = datetime.now(timezone.utc)
    report = {"benchmark": name, "date": now.isoformat(timespec="seconds"), "commit": git_commit(),
              "machine": machine(), **figures}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{now:%Y-%m-%d}_{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
