"""Scheduler parity: the reference's sigma schedules (full and distilled, every shift) and its Euler chain."""

from __future__ import annotations

import pytest

from pipeline.sampling.schedules import base_sigmas, euler_step, shifted_schedule
from support import refvec


@pytest.mark.parametrize("case", refvec.case_params("scheduler"))
def test_scheduler_case(case: refvec.RefCase) -> None:
    """Reproduce one scheduler case: a schedule (sigmas_in, timesteps, sigmas) or the 4-step Euler chain."""
    case = refvec.require_case(case)
    params = case.params
    if "steps" in params:
        sigmas_in = base_sigmas(case.version, int(params["steps"]), bool(params["use_distill"]))
        schedule = shifted_schedule(sigmas_in, float(params["shift"]))
        produced = {"sigmas_in": sigmas_in, "timesteps": schedule.timesteps, "sigmas": schedule.sigmas}
        by_suffix = {name: produced[name.rsplit(".", 1)[1]] for name in case.outputs}
        case.compare_all(by_suffix)
        return
    sigmas = case.tensor("sigmas")
    sample = case.tensor("sample_0")
    produced = {}
    for i in range(len(case.tensor("timesteps"))):
        sample = euler_step(sample, case.tensor(f"model_output_{i}"), sigmas[i], sigmas[i + 1])
        produced[f"sample_{i + 1}"] = sample
    case.compare_all(produced)
