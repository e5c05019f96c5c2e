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


# The one list of which parity test module consumes each case kind; a kind present in a set but absent here fails
# the plumbing test, and each module listed must parametrise a test over every case of its kind.
CONSUMERS: dict[str, str] = {
    "dit_forward": "test_dit_forward",
    "int8": "test_dit_int8",
    "lora": "test_dit_lora",
    "loop": "test_loop",
    "audio": "test_audio_parity",
    "scheduler": "test_scheduler",
    "chain": "test_chain",
}


class ToleranceMissing(AssertionError):
    """A floating-point output has no tolerance bound (an integer output without one compares exactly)."""


@dataclass(frozen=True)
class Tolerance:
    """Acceptance bounds for one output; every bound given must hold.

    For integer outputs `max_abs` counts in units of one (LSB for uint8) and `max_mismatch_fraction` bounds the
    fraction of elements that differ at all. An integer output with no bound at all must match exactly.
    """

    max_abs: float | None = None
    rel_l2: float | None = None
    max_mismatch_fraction: float | None = None

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> Tolerance:
        """A tolerance from a cases.json mapping (unknown keys are refused, so a misspelt bound cannot vanish)."""
        raw = dict(raw or {})
        unknown = set(raw) - {"max_abs", "rel_l2", "max_mismatch_fraction"}
        if unknown:
            raise ValueError(f"unknown tolerance keys {sorted(unknown)}")
        return cls(**raw)

    @property
    def bounded(self) -> bool:
        """True when at least one bound is given."""
        return any(v is not None for v in (self.max_abs, self.rel_l2, self.max_mismatch_fraction))


@dataclass(frozen=True)
class Errors:
    """Measured differences of one output against its reference."""

    max_abs: float
    rel_l2: float
    mismatch_fraction: float


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
        """One of the kinds in CONSUMERS (dit_forward, int8, lora, loop, audio, scheduler, chain)."""
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

    def tolerance(self, output: str, stepwise: bool = False) -> Tolerance:
        """Tolerance for one output: `tolerance_by_output` for that output, else the case tolerance for floats
        (integer outputs: exact). `stepwise` picks the chain cases' `tolerance_stepwise` entry for the dtype."""
        integer = not self.tensor(output).is_floating_point()
        if stepwise:
            table = self.spec.get("tolerance_stepwise")
            if table is None:
                raise ToleranceMissing(f"{self.id}: no tolerance_stepwise for {output}")
            return Tolerance.of(table["uint8" if integer else "float"])
        by_output = self.spec.get("tolerance_by_output", {})
        if output in by_output:
            return Tolerance.of(by_output[output])
        return Tolerance() if integer else Tolerance.of(self.spec.get("tolerance"))

    def compare(self, output: str, actual: Any, stepwise: bool = False) -> Errors:
        """Compare one produced tensor with the stored reference output under the case tolerance."""
        if output not in self.outputs:
            raise AssertionError(f"{self.id}: {output!r} is not an output of this case ({self.outputs})")
        tolerance = self.tolerance(output, stepwise)
        errors = assert_close_to_reference(actual, self.tensor(output), tolerance, f"{self.id}:{output}")
        self._compared.add(output)
        return errors

    def compare_all(self, produced: Mapping[str, Any], stepwise: bool = False) -> dict[str, Errors]:
        """Compare a mapping of outputs, which must cover every output the case lists; every failure is reported."""
        missing = [name for name in self.outputs if name not in produced]
        if missing:
            raise AssertionError(f"{self.id}: outputs not produced, so not compared: {missing}")
        measured, failures = {}, []
        for name in self.outputs:
            try:
                measured[name] = self.compare(name, produced[name], stepwise)
            except AssertionError as exc:
                failures.append(str(exc))
        if failures:
            raise AssertionError("\n".join(failures))
        self.assert_all_compared()
        return measured

    def assert_all_compared(self) -> None:
        """Fail unless every output of the case was compared."""
        if not self.outputs:
            raise AssertionError(f"{self.id}: the case lists no output to compare")
        left = [name for name in self.outputs if name not in self._compared]
        if left:
            raise AssertionError(f"{self.id}: outputs never compared: {left}")


def measure(actual: Any, expected: Any, label: str) -> Errors:
    """Max abs, relative L2 and mismatch fraction of `actual` against `expected` (shapes and dtype kinds must match)."""
    import torch

    actual_t = torch.as_tensor(actual).detach().cpu()
    expected_t = torch.as_tensor(expected).detach().cpu()
    if tuple(actual_t.shape) != tuple(expected_t.shape):
        raise AssertionError(f"{label}: shape {tuple(actual_t.shape)} != reference {tuple(expected_t.shape)}")
    if actual_t.is_floating_point() != expected_t.is_floating_point():
        raise AssertionError(
            f"{label}: a {actual_t.dtype} result cannot be compared with a {expected_t.dtype} reference "
            "(convert it explicitly and exactly, never by truncation)"
        )
    if not torch.isfinite(actual_t.double()).all():
        raise AssertionError(f"{label}: output has non-finite values")
    diff = actual_t.double() - expected_t.double()
    if not diff.numel():
        return Errors(0.0, 0.0, 0.0)
    denom = expected_t.double().norm().item()
    rel_l2 = diff.norm().item() / denom if denom > 0 else diff.norm().item()
    mismatch = (diff != 0).double().mean().item()
    return Errors(diff.abs().max().item(), rel_l2, mismatch)


def assert_close_to_reference(actual: Any, expected: Any, tol: Tolerance, label: str) -> Errors:
    """Assert shape equality and every bound of `tol`, reporting all measured errors on failure.

    An integer reference with no bound must be matched exactly; a float reference needs at least one bound.
    """
    import torch

    errors = measure(actual, expected, label)
    integer = not torch.as_tensor(expected).is_floating_point()
    if not tol.bounded:
        if not integer:
            raise ToleranceMissing(f"{label}: no tolerance bound for a floating-point output")
        tol = Tolerance(max_abs=0)
    bounds = (
        ("max_abs", errors.max_abs, tol.max_abs),
        ("rel_l2", errors.rel_l2, tol.rel_l2),
        ("mismatch_fraction", errors.mismatch_fraction, tol.max_mismatch_fraction),
    )
    problems = [
        f"{name} {value:.3e} > {bound:.1e}" for name, value, bound in bounds if bound is not None and value > bound
    ]
    if problems:
        raise AssertionError(
            f"{label}: " + "; ".join(problems) + f" (max_abs={errors.max_abs:.3e}, rel_l2={errors.rel_l2:.3e}, "
            f"mismatch={errors.mismatch_fraction:.3e})"
        )
    return errors


def iter_cases(kind: str | None = None) -> Iterator[RefCase]:
    """Yield every case of every set (optionally only one kind), in cases.json order."""
    for index, root in enumerate(refvec_roots()):
        document = json.loads((root / "cases.json").read_text())
        for spec in document["cases"]:
            if kind is None or spec["kind"] == kind:
                yield RefCase(root=root, spec=spec, set_index=index)


def unconsumed_kinds() -> set[str]:
    """Kinds of the sets' cases that no parity test consumes (not listed in CONSUMERS)."""
    return {case.kind for case in iter_cases()} - set(CONSUMERS)


def case_params(kind: str) -> list[Any]:
    """pytest parameters for every case of `kind`; ids are the case ids (prefixed by the set when several)."""
    if kind not in CONSUMERS:
        return [
            pytest.param(RefvecSetMissing(f"kind {kind!r} is not listed in refvec.CONSUMERS"), id=f"unlisted-{kind}")
        ]
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
