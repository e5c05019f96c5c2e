"""Runs the DiT calls of a refvec case (`call` or the `calls` sequence of KV-cache continuation cases)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import torch

from pipeline.checkpoints.dit_loader import load_dit
from support.refvec import RefCase

FROM_CACHE_PASS = "from cache pass"
TIMESTEP_ATOL = 1e-3  # the sidecars log timesteps as float32 values of the reference schedule
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


@cache
def refvec_dit(path: str) -> torch.nn.Module:
    """A set's tiny DiT through our normal loader, in float32 like the vectors (loaded once per session)."""
    return load_dit(path, dtype=torch.float32).model


class DiTCallLog:
    """Records every DiT call made inside a `with` block (shape, flags, timesteps, as the sidecars' `dit_calls` list
    them), plus the input of each KV-cache pass and the conditional audio of each segment's first call."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.calls: list[dict[str, Any]] = []
        self.clean: list[torch.Tensor] = []  # hidden_states of each KV-cache pass: [ref | clean latents]
        self.audio: list[torch.Tensor] = []  # audio of the first call and of each KV-cache pass (one per segment)

    def __enter__(self) -> DiTCallLog:
        self._handle = self.model.register_forward_pre_hook(self._record, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def _record(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        x, audio = kwargs["hidden_states"], kwargs["audio_embs"]
        if kwargs.get("return_kv"):
            self.clean.append(x.detach().clone())
        if not self.calls or kwargs.get("return_kv"):
            self.audio.append(audio[-1:].detach().clone())  # the conditional row ([neg, pos] under CFG)
        self.calls.append(
            {
                "batch": x.shape[0],
                "T": x.shape[2],
                "num_cond_latents": kwargs.get("num_cond_latents") or 0,
                "return_kv": bool(kwargs.get("return_kv")),
                "skip_crs_attn": bool(kwargs.get("skip_crs_attn")),
                "kv_cache": kwargs.get("kv_cache_dict") is not None,
                "num_ref_latents": kwargs.get("num_ref_latents"),
                "ref_img_index": kwargs.get("ref_img_index"),
                "mask_frame_range": kwargs.get("mask_frame_range"),
                "audio_batch": audio.shape[0],
                "audio_is_zero": not bool(audio.abs().sum()),
                "multi": kwargs.get("ref_target_masks") is not None,
                "timestep": kwargs["timestep"].detach().clone(),
            }
        )

    def check(
        self,
        expected: list[dict[str, Any]],
        fields: Iterable[str],
        timestep_of: Callable[[dict[str, Any], torch.Tensor], torch.Tensor],
    ) -> None:
        """Same number of calls as the reference's log, the same `fields`, and the timesteps `timestep_of(ref, ours)`
        reads from each logged call."""
        assert len(self.calls) == len(expected), f"{len(self.calls)} DiT calls, the reference made {len(expected)}"
        for index, (ours, ref) in enumerate(zip(self.calls, expected, strict=True)):
            for key in fields:
                assert ours[key] == ref[key], f"DiT call {index}: {key} {ours[key]} != {ref[key]}"
            t = ours["timestep"]
            torch.testing.assert_close(
                t, timestep_of(ref, t), atol=TIMESTEP_ATOL, rtol=0, msg=f"DiT call {index}: timesteps"
            )
