"""The nodes' `cancellable` wrapper: an engine interruption becomes ComfyUI's interrupt, accelerator memory is given
back after every run, and the slow full garbage collection runs only when a Cancel or an error left a traceback."""

from __future__ import annotations

import gc

import pytest

from pipeline.sampling.hooks import Interrupted
from support.comfy_inprocess import pack


@pytest.fixture
def freed(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of `gc.collect` and `soft_empty_cache` calls made by the wrapper."""
    runtime = pack("nodes.runtime")
    counts = {"collect": 0, "empty_cache": 0}
    monkeypatch.setattr(gc, "collect", lambda *a: counts.__setitem__("collect", counts["collect"] + 1))
    monkeypatch.setattr(
        runtime.mm, "soft_empty_cache", lambda *a: counts.__setitem__("empty_cache", counts["empty_cache"] + 1)
    )
    return counts


def test_a_run_that_ends_normally_empties_the_cache_without_a_full_collection(freed: dict[str, int]) -> None:
    with pack("nodes.runtime").cancellable(Interrupted):
        pass
    assert freed == {"collect": 0, "empty_cache": 1}


def test_a_cancel_becomes_comfyuis_interrupt_and_collects(freed: dict[str, int]) -> None:
    runtime = pack("nodes.runtime")
    with pytest.raises(runtime.mm.InterruptProcessingException), runtime.cancellable(Interrupted):
        raise Interrupted("cancelled between two model calls")
    assert freed == {"collect": 1, "empty_cache": 1}


def test_an_error_passes_through_and_collects(freed: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="bad input"), pack("nodes.runtime").cancellable(Interrupted):
        raise ValueError("bad input")
    assert freed == {"collect": 1, "empty_cache": 1}
