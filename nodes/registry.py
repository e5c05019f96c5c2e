"""The list of node classes the extension registers; each node module adds its classes here."""

from __future__ import annotations

from typing import Any


def all_nodes() -> list[type[Any]]:
    """Every node class of the pack, in menu order."""
    return []
