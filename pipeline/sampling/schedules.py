"""Sigma / timestep schedules of the reference sampler, the scheduler shift, and the Euler update (as
LongCatVideoAvatarPipeline.get_timesteps_sigmas and generate_avc's enhance_hf tail make them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from ..model_catalogue import SCHEDULER_CONFIG, SCHEDULER_FOLDER
from ..versions import get_version

NUM_TRAIN_TIMESTEPS = 1000  # the reference trains on 1000 flow-matching timesteps (FlowMatchEulerDiscreteScheduler)
V10_DISTILL_GRID = 50  # v1.0 "distill" schedule subsamples a 50-point grid (pipeline._num_distill_sample_steps)
NON_DISTILL_SIGMA_MIN = 0.001  # the reference's linspace(1, 0.001, N) stops just short of 0
ENHANCE_HF_START = 500.0  # enhance_hf keeps shifted timesteps above 500 ...
ENHANCE_HF_STEPS = 10  # ... then 10 uniform, unshifted timesteps 500, 450, ..., 50


@dataclass(frozen=True)
class Schedule:
    """Timesteps [N] (model input, 0..1000) and sigmas [N+1] (terminal 0 appended), both float32."""

    timesteps: torch.Tensor
    sigmas: torch.Tensor

    def __len__(self) -> int:
        return int(self.timesteps.shape[0])


def base_sigmas(version: str, steps: int, distilled: bool) -> torch.Tensor:
    """The reference `get_timesteps_sigmas`: unshifted sigmas for full or distilled sampling."""
    distill_steps = get_version(version).distill_steps
    if distilled and distill_steps is not None:
        # Rows 0, 125, ..., 875 of a descending linspace(1, 0, 1000): the DMD student's 8 training timesteps.
        stride = NUM_TRAIN_TIMESTEPS // distill_steps
        picks = (torch.arange(1, distill_steps + 1, dtype=torch.float32) * stride).round().long()
        grid = torch.flip(torch.linspace(0, 1, NUM_TRAIN_TIMESTEPS), [0])
        return torch.flip(grid[NUM_TRAIN_TIMESTEPS - picks], [0]).float()
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if distilled:
        stride = NUM_TRAIN_TIMESTEPS // V10_DISTILL_GRID
        grid = (torch.arange(1, V10_DISTILL_GRID + 1, dtype=torch.float32) * stride).round().long()
        picks = np.floor(np.linspace(0, V10_DISTILL_GRID, num=steps, endpoint=False)).astype(np.int64)
        return torch.flip(grid, [0])[torch.from_numpy(picks)].float() / NUM_TRAIN_TIMESTEPS
    return torch.linspace(1, NON_DISTILL_SIGMA_MIN, steps).to(torch.float32)


def shifted_schedule(sigmas: torch.Tensor, shift: float) -> Schedule:
    """Apply `shift·σ/(1+(shift−1)·σ)` through diffusers' FlowMatchEulerDiscreteScheduler, as the reference does."""
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=float(shift))
    scheduler.set_timesteps(len(sigmas), sigmas=sigmas.tolist(), device="cpu")
    return Schedule(timesteps=scheduler.timesteps.float().clone(), sigmas=scheduler.sigmas.float().clone())


def enhance_hf_tail(schedule: Schedule) -> Schedule:
    """Continuation tail of non-distilled sampling: shifted timesteps > 500, then 10 uniform unshifted ones."""
    head = schedule.timesteps[schedule.timesteps > ENHANCE_HF_START]
    tail = torch.from_numpy(np.linspace(ENHANCE_HF_START, 0, ENHANCE_HF_STEPS, dtype=np.float32, endpoint=False))
    timesteps = torch.cat([head.float(), tail])
    sigmas = torch.cat([timesteps / NUM_TRAIN_TIMESTEPS, torch.zeros(1)])
    return Schedule(timesteps=timesteps, sigmas=sigmas)


def build_schedule(version: str, steps: int, distilled: bool, shift: float, continuation: bool = False) -> Schedule:
    """The schedule of one segment; continuation segments of non-distilled sampling get the enhance_hf tail."""
    schedule = shifted_schedule(base_sigmas(version, steps, distilled), shift)
    # The reference keys the tail on distillation (generate_avc asserts not both), for v1.0 and v1.5 alike.
    return enhance_hf_tail(schedule) if continuation and not distilled else schedule


def euler_step(sample: torch.Tensor, model_output: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor):
    """diffusers' flow-matching Euler update in float32: `sample + (σ_next − σ)·model_output`."""
    return sample.to(torch.float32) + (sigma_next - sigma) * model_output


def read_shift(scheduler_dir: str | Path | None) -> float | None:
    """The `shift` of a `scheduler/scheduler_config.json` folder (or file), or None when absent or unreadable."""
    if scheduler_dir is None:
        return None
    path = Path(scheduler_dir)
    if path.is_dir():
        path = path / SCHEDULER_CONFIG
    try:
        value = json.loads(path.read_text()).get("shift")
    except (OSError, ValueError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def resolve_shift(version: str, scheduler_dir: str | Path | None = None, override: float | None = None) -> float:
    """Shift to use: the caller's override, else the checkpoint's scheduler config, else the per-version default."""
    if override is not None and override > 0:
        return float(override)
    found = read_shift(scheduler_dir)
    return found if found is not None else get_version(version).default_shift


def find_scheduler_dir(longcat_root: str | Path, version: str) -> Path | None:
    """The official scheduler/ folder of `version` under a `models/longcat/` root, or None (the default shift applies).

    Avatar-1.5 ships its own `scheduler/`; Avatar v1.0 uses LongCat-Video's (the version table's scheduler_repo).
    """
    folder = Path(longcat_root) / get_version(version).scheduler_repo / SCHEDULER_FOLDER
    return folder if (folder / SCHEDULER_CONFIG).is_file() else None
