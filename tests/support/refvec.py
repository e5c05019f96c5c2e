"""Finds the parity vector sets named in LONGCAT_REFVEC and drives their cases.json.

Every parity test is parametrised from the cases of every set (never from file names), and compares EVERY output a
case lists with the case's tolerances. Finding no set is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REFVEC = REPO_ROOT.parent / "shared" / "refvec"


class RefvecSetMissing(RuntimeError):
    """Raised when LONGCAT_REFVEC (or the default) names no usable vector set."""


def refvec_roots() -> list[Path]:
    """Return every vector-set folder named in LONGCAT_REFVEC (os.pathsep-separated), default ../shared/refvec."""
    raw = os.environ.get("LONGCAT_REFVEC", "")
    entries = [p for p in raw.split(os.pathsep) if p.strip()] or [str(DEFAULT_REFVEC)]
    roots = []
    for entry in entries:
        root = Path(entry).expanduser()
        if not root.is_absolute():
            root = (REPO_ROOT / root).resolve()
        if not (root / "cases.json").is_file():
            raise RefvecSetMissing(f"no cases.json in vector set {root} (from LONGCAT_REFVEC={raw!r})")
        roots.append(root)
    return roots


@dataclass(frozen=True)
class Tolerance:
    """Acceptance bounds for one output: max absolute error and relative L2 error (either may be absent)."""

    max_abs: float | None = None
    rel_l2: float | None = None


@dataclass
class RefCase:
    """One case of a vector set's cases.json, with helpers to read its tensors and files."""

    root: Path
    spec: dict[str, Any]
    set_index: int = 0
    _compared: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        """The case id from cases.json, e.g. `dit_forward/v1.5/avc_kv`."""
        return self.spec["id"]

    @property
    def kind(self) -> str:
        """One of dit_forward, int8, lora, loop, audio, scheduler."""
        return self.spec["kind"]

    @property
    def version(self) -> str | None:
        """Model version of the case (`v1.0`, `v1.5`) or None."""
        return self.spec.get("version")

    @property
    def inputs(self) -> list[str]:
        """Names of the input tensors in the case file."""
        return list(self.spec.get("inputs", []))

    @property
    def outputs(self) -> list[str]:
        """Names of the reference outputs; every one must be compared."""
        return list(self.spec.get("outputs", []))

    @property
    def params(self) -> dict[str, Any]:
        """Scalar parameters of loop/audio/scheduler cases."""
        return dict(self.spec.get("params", {}))

    def path(self, relative: str) -> Path:
        """Resolve a path given relative to the vector set."""
        return self.root / relative

    def model_path(self, role: str) -> Path:
        """Resolve one entry of the case's `models` mapping (a folder or file inside the set)."""
        return self.path(self.spec["models"][role])

    @cached_property
    def sidecar(self) -> dict[str, Any]:
        """The full JSON description next to the tensor file."""
        return json.loads(self.path(self.spec["sidecar"]).read_text())

    @cached_property
    def tensors(self) -> dict[str, Any]:
        """All tensors of the case file (inputs and outputs) as torch tensors."""
        from safetensors.torch import load_file

        return load_file(str(self.path(self.spec["file"])))

    def tensor(self, name: str) -> Any:
        """One tensor of the case file by its stored name."""
        return self.tensors[name]

    def resolve(self, value: Any) -> Any:
        """Map a call argument from cases.json: a stored tensor name becomes the tensor, scalars pass through."""
        if isinstance(value, str) and value in self.tensors:
            return self.tensors[value]
        return value

    def tolerance(self, output: str) -> Tolerance:
        """Tolerance for one output; `tolerance_by_output` replaces the case tolerance for that output."""
        by_output = self.spec.get("tolerance_by_output", {})
        raw = by_output.get(output, self.spec.get("tolerance", {}))
        return Tolerance(max_abs=raw.get("max_abs"), rel_l2=raw.get("rel_l2"))

    def compare(self, output: str, actual: Any) -> None:
        """Compare one produced tensor with the stored reference output under the case tolerance."""
        if output not in self.outputs:
            raise AssertionError(f"{self.id}: {output!r} is not an output of this case ({self.outputs})")
        assert_close_to_reference(actual, self.tensor(output), self.tolerance(output), f"{self.id}:{output}")
        self._compared.add(output)

    def compare_all(self, produced: Mapping[str, Any]) -> None:
        """Compare a mapping of outputs and require that it covers every output the case lists."""
        missing = [name for name in self.outputs if name not in produced]
        if missing:
            raise AssertionError(f"{self.id}: outputs not produced, so not compared: {missing}")
        for name in self.outputs:
            self.compare(name, produced[name])
        self.assert_all_compared()

    def assert_all_compared(self) -> None:
        """Fail unless every output of the case was compared."""
        if not self.outputs:
            raise AssertionError(f"{self.id}: the case lists no output to compare")
        left = [name for name in self.outputs if name not in self._compared]
        if left:
            raise AssertionError(f"{self.id}: outputs never compared: {left}")


def assert_close_to_reference(actual: Any, expected: Any, tol: Tolerance, label: str) -> None:
    """Assert shape equality and max-abs / relative-L2 error within `tol`, reporting both errors on failure."""
    import torch

    actual_t = torch.as_tensor(actual).detach().cpu()
    expected_t = torch.as_tensor(expected).detach().cpu()
    if tuple(actual_t.shape) != tuple(expected_t.shape):
        raise AssertionError(f"{label}: shape {tuple(actual_t.shape)} != reference {tuple(expected_t.shape)}")
    if not expected_t.is_floating_point():
        if not torch.equal(actual_t.to(expected_t.dtype), expected_t):
            bad = (actual_t.to(expected_t.dtype) != expected_t).sum().item()
            raise AssertionError(f"{label}: {bad} integer entries differ from the reference")
        return
    a = actual_t.double()
    e = expected_t.double()
    if not torch.isfinite(a).all():
        raise AssertionError(f"{label}: output has non-finite values")
    diff = a - e
    max_abs = diff.abs().max().item() if diff.numel() else 0.0
    denom = e.norm().item()
    rel_l2 = diff.norm().item() / denom if denom > 0 else diff.norm().item()
    problems = []
    if tol.max_abs is not None and max_abs > tol.max_abs:
        problems.append(f"max_abs {max_abs:.3e} > {tol.max_abs:.1e}")
    if tol.rel_l2 is not None and rel_l2 > tol.rel_l2:
        problems.append(f"rel_l2 {rel_l2:.3e} > {tol.rel_l2:.1e}")
    if problems:
        raise AssertionError(f"{label}: " + "; ".join(problems) + f" (max_abs={max_abs:.3e}, rel_l2={rel_l2:.3e})")


def iter_cases(kind: str | None = None) -> Iterator[RefCase]:
    """Yield every case of every set (optionally only one kind), in cases.json order."""
    for index, root in enumerate(refvec_roots()):
        document = json.loads((root / "cases.json").read_text())
        for spec in document["cases"]:
            if kind is None or spec["kind"] == kind:
                yield RefCase(root=root, spec=spec, set_index=index)


def case_params(kind: str) -> list[Any]:
    """pytest parameters for every case of `kind`; ids are the case ids (prefixed by the set when several)."""
    try:
        roots = refvec_roots()
        cases = list(iter_cases(kind))
    except RefvecSetMissing as exc:
        # A parameter that fails at run time: a missing set must fail, not skip.
        return [pytest.param(exc, id="refvec-set-missing")]
    if not cases:
        return [pytest.param(RefvecSetMissing(f"no {kind!r} case in {roots}"), id=f"no-{kind}-cases")]
    several = len(roots) > 1
    return [pytest.param(c, id=f"set{c.set_index}:{c.id}" if several else c.id) for c in cases]


def require_case(case: RefCase | Exception) -> RefCase:
    """Turn the placeholder parameter of a missing set into a test failure."""
    if isinstance(case, Exception):
        raise AssertionError(str(case))
    return case
