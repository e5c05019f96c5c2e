"""Unit tests of the schedules: the reference's values, the enhance_hf tail, shift resolution, the Euler update."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pipeline.sampling.schedules import (
    base_sigmas,
    build_schedule,
    enhance_hf_tail,
    euler_step,
    find_scheduler_dir,
    resolve_shift,
    shifted_schedule,
)
from pipeline.versions import VERSIONS

REALCKPT = Path(__file__).resolve().parents[3] / "shared" / "realckpt"


def test_v15_distill_sigmas_match_the_spec_with_shift_7() -> None:
    """get_timesteps_sigmas(8, use_distill=True) of the reference: the 8 DMD sigmas and their shift-7 values."""
    sigmas = base_sigmas("v1.5", 8, distilled=True)
    expected = [1.0, 0.87487, 0.74975, 0.62462, 0.49950, 0.37437, 0.24925, 0.12412]
    torch.testing.assert_close(sigmas, torch.tensor(expected), atol=1e-5, rtol=0)
    shifted = shifted_schedule(sigmas, 7.0)
    expected7 = [1.0, 0.97998, 0.95449, 0.92094, 0.87478, 0.80728, 0.69916, 0.49799, 0.0]
    torch.testing.assert_close(shifted.sigmas, torch.tensor(expected7), atol=1e-5, rtol=0)
    torch.testing.assert_close(shifted.timesteps, shifted.sigmas[:-1] * 1000)


def test_v15_distill_ignores_the_step_count() -> None:
    """The distilled v1.5 schedule always has 8 steps, whatever the caller asks."""
    assert len(build_schedule("v1.5", 50, distilled=True, shift=7.0)) == 8


def test_v10_distill_subsamples_the_50_point_grid() -> None:
    """v1.0 distill: 1000, 980, ..., 20 subsampled at floor(linspace(0, 50, N, endpoint=False))."""
    torch.testing.assert_close(base_sigmas("v1.0", 4, distilled=True), torch.tensor([1.0, 0.76, 0.5, 0.26]))


def test_enhance_hf_tail_keeps_shifted_head_and_adds_uniform_tail() -> None:
    """The v1.0-style continuation tail: shifted timesteps above 500, then 500, 450, ..., 50 with σ = t/1000."""
    full = shifted_schedule(base_sigmas("v1.0", 50, False), 12.0)
    tail = enhance_hf_tail(full)
    head = full.timesteps[full.timesteps > 500]
    assert len(tail) == len(head) + 10
    torch.testing.assert_close(tail.timesteps[len(head) :], torch.arange(500, 0, -50, dtype=torch.float32))
    torch.testing.assert_close(tail.sigmas, torch.cat([tail.timesteps / 1000, torch.zeros(1)]))
    assert len(build_schedule("v1.5", 4, False, 5.0, continuation=True)) == 13
    assert len(build_schedule("v1.5", 8, True, 5.0, continuation=True)) == 8


def test_shift_resolution_order(tmp_path: Path) -> None:
    """Override beats the checkpoint's scheduler_config.json, which beats the per-version default."""
    assert resolve_shift("v1.5", REALCKPT / "avatar-1.5" / "scheduler") == 7.0
    (tmp_path / "scheduler_config.json").write_text(json.dumps({"shift": 3.5}))
    assert resolve_shift("v1.0", tmp_path) == 3.5
    assert resolve_shift("v1.0", tmp_path, override=9.0) == 9.0
    assert resolve_shift("v1.0", tmp_path / "missing") == VERSIONS["v1.0"].default_shift == 12.0
    assert resolve_shift("v1.5", None) == 7.0
    with pytest.raises(ValueError, match="unknown LongCat-Video-Avatar version"):
        resolve_shift("v2", None)


def test_euler_step_moves_along_the_velocity() -> None:
    """x_next = x + (σ_next − σ)·out in float32; with out = −(x0 − ε) one step from σ=1 to 0 lands on x0."""
    noise = torch.randn(2, 3)
    x0 = torch.randn(2, 3)
    out = euler_step(noise, -(x0 - noise), torch.tensor(1.0), torch.tensor(0.0))
    torch.testing.assert_close(out, x0)
    assert euler_step(noise.to(torch.bfloat16), noise, torch.tensor(1.0), torch.tensor(0.5)).dtype == torch.float32


def test_scheduler_folder_of_the_official_layouts(tmp_path: Path) -> None:
    """v1.5 reads its own scheduler/, v1.0 LongCat-Video's; without the folder the per-version default applies."""
    longcat = tmp_path / "longcat"
    assert find_scheduler_dir(longcat, "v1.5") is None and resolve_shift("v1.5", None) == 7.0
    for repo, shift in (("LongCat-Video-Avatar-1.5", 3.0), ("LongCat-Video", 5.0)):
        (longcat / repo / "scheduler").mkdir(parents=True)
        (longcat / repo / "scheduler" / "scheduler_config.json").write_text(json.dumps({"shift": shift}))
    (longcat / "LongCat-Video-Avatar" / "scheduler").mkdir(parents=True)  # not v1.0's: it has no config there
    v15, v10 = find_scheduler_dir(longcat, "v1.5"), find_scheduler_dir(longcat, "v1.0")
    assert v15 == longcat / "LongCat-Video-Avatar-1.5" / "scheduler" and resolve_shift("v1.5", v15) == 3.0
    assert v10 == longcat / "LongCat-Video" / "scheduler" and resolve_shift("v1.0", v10) == 5.0
