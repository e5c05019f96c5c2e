"""`doctor --selftest`: run the whole graph once in a temporary ComfyUI with tiny random models (placeholder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_selftest(comfyui: Path | None, keep: Path | None = None) -> dict[str, Any]:
    """Not available yet."""
    return {"ok": False, "message": "the self-test is not implemented yet"}
