"""DiT forward parity: every dit_forward case of every vector set, through the normal loader, in float32."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import torch

from pipeline.checkpoints.dit_loader import LoadedDiT, load_dit
from support import refvec
from support.dit_calls import run_dit_case


@cache
def loaded(path: Path) -> LoadedDiT:
    """One float32 load per checkpoint folder for the whole session."""
    return load_dit(path, dtype=torch.float32)


@pytest.mark.parametrize("case", refvec.case_params("dit_forward"))
def test_dit_forward(case: refvec.RefCase) -> None:
    """The loaded DiT reproduces every stored output (outputs, cache-pass output, per-block K/V) of the case."""
    case = refvec.require_case(case)
    dit = loaded(case.model_path("model_dir"))
    assert dit.version == case.version
    produced = run_dit_case(case, dit.model)
    case.compare_all(produced)
