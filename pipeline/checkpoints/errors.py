"""The error raised for unusable checkpoint files, with short, actionable messages."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# How many key names an error message lists before summarising the rest as a count.
MAX_LISTED_KEYS = 5


class CheckpointError(ValueError):
    """A checkpoint file or folder is missing, unreadable, or does not hold the expected tensors."""


def summarize_keys(keys: Iterable[str], limit: int = MAX_LISTED_KEYS) -> str:
    """`a, b, c, ... (+N more)` for the first `limit` sorted names."""
    names = sorted(keys)
    head = ", ".join(names[:limit])
    return head + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")


def key_mismatch_error(
    where: str | Path,
    missing: Iterable[str] = (),
    unexpected: Iterable[str] = (),
    shapes: Iterable[str] = (),
    what: str = "LongCat-Avatar DiT",
) -> CheckpointError:
    """A CheckpointError naming the file and the first few missing / unexpected / mis-shaped keys."""
    lines = [f"{where} is not a complete {what} checkpoint:"]
    missing, unexpected, shapes = list(missing), list(unexpected), list(shapes)
    if missing:
        lines.append(f"  missing {len(missing)} tensor(s): {summarize_keys(missing)}")
    if unexpected:
        lines.append(f"  unexpected {len(unexpected)} tensor(s): {summarize_keys(unexpected)}")
    if shapes:
        lines.append(f"  {len(shapes)} tensor(s) with the wrong shape: {summarize_keys(shapes, 3)}")
    return CheckpointError("\n".join(lines))
