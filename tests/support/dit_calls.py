"""Runs the DiT calls of a refvec case (`call` or the `calls` sequence of KV-cache continuation cases)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from support.refvec import RefCase

FROM_CACHE_PASS = "from cache pass"
OUTPUT_NAME = re.compile(r"out\.[A-Za-z0-9_.]*[A-Za-z0-9_]")


def returned_names(step: dict[str, Any], default: str) -> tuple[str, str]:
    """(output name, per-block K/V name pattern with {i}) read from a call's `returns` text, with defaults."""
    names = OUTPUT_NAME.findall(str(step.get("returns", "")))
    output = next((n for n in names if ".i." not in n), default)
    kv = next((n for n in names if n.endswith(".i.k")), "out.kv_cache.i.k")
    return output, kv[: -len(".i.k")] + ".{i}"


def call_kwargs(case: RefCase, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Resolve tensor names of a cases.json call into tensors; scalars and None pass through."""
    return {name: case.resolve(value) for name, value in kwargs.items()}


def run_dit_case(case: RefCase, model: Callable[..., Any]) -> dict[str, torch.Tensor]:
    """Produce every `out.*` tensor of a dit_forward case with `model` (cache pass + noise pass when listed)."""
    with torch.no_grad():
        if "call" in case.spec:
            return {"out.output": model(**call_kwargs(case, case.spec["call"]["kwargs"]))}
        produced: dict[str, torch.Tensor] = {}
        cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None
        for step in case.spec["calls"]:
            kwargs = call_kwargs(case, step["kwargs"])
            if kwargs.get("kv_cache_dict") == FROM_CACHE_PASS:
                kwargs["kv_cache_dict"] = cache
            if kwargs.get("return_kv"):
                name, kv_name = returned_names(step, "out.cache_pass_output")
                produced[name], cache = model(**kwargs)
                for index, (k, v) in cache.items():
                    produced[kv_name.format(i=index) + ".k"] = k
                    produced[kv_name.format(i=index) + ".v"] = v
            else:
                name, _ = returned_names(step, "out.output")
                produced[name] = model(**kwargs)
        return produced


def single_call_kwargs(case: RefCase) -> dict[str, Any]:
    """Keyword arguments of a one-call case (int8 / lora kinds)."""
    return call_kwargs(case, case.spec["call"]["kwargs"])


def model_dir(case: RefCase, role: str) -> Path:
    """A model folder/file of the case, resolved inside its vector set."""
    return case.model_path(role)
