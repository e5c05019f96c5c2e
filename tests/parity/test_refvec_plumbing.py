"""The parity plumbing itself: sets are found, every case is consumed, every output is bounded and compared."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from support import refvec


def fake_set(root: Path, kind: str, tolerance: dict | None) -> Path:
    """A one-case vector set with a float output `out.x` and a uint8 output `out.u` (reference = the stored values)."""
    root.mkdir(parents=True, exist_ok=True)
    save_file({"out.x": torch.ones(4), "out.u": torch.arange(4, dtype=torch.uint8)}, str(root / "case.safetensors"))
    spec = {"id": f"{kind}/fake", "kind": kind, "file": "case.safetensors", "sidecar": "case.json", "version": None}
    spec |= {"inputs": [], "outputs": ["out.x", "out.u"], "models": {}}
    if tolerance is not None:
        spec["tolerance"] = tolerance
    (root / "cases.json").write_text(json.dumps({"schema": "test", "cases": [spec]}))
    return root


def test_default_set_is_found() -> None:
    roots = refvec.refvec_roots()
    assert roots, "no vector set found"
    assert all((root / "cases.json").is_file() for root in roots)


@pytest.mark.parametrize("root", refvec.refvec_roots(), ids=str)
def test_every_consumed_kind_has_cases_in_every_set(root: Path) -> None:
    kinds = {case.kind for case in refvec.iter_cases() if case.root == root}
    assert set(refvec.CONSUMERS) <= kinds, f"{root}: no case of {sorted(set(refvec.CONSUMERS) - kinds)}"


def test_every_kind_present_is_consumed() -> None:
    assert not refvec.unconsumed_kinds(), f"no parity test consumes {sorted(refvec.unconsumed_kinds())}"


def test_an_unconsumed_kind_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A set with a kind no test reads is caught, and a test asking for an unlisted kind fails."""
    monkeypatch.setenv("LONGCAT_REFVEC", str(fake_set(tmp_path, "bogus", {"max_abs": 1e-3})))
    assert refvec.unconsumed_kinds() == {"bogus"}
    (param,) = refvec.case_params("bogus")
    with pytest.raises(AssertionError, match="not listed"):
        refvec.require_case(param.values[0])


def parametrised_cases(module_name: str) -> set[tuple[Path, str]]:
    """(set root, case id) of every RefCase a test module's parametrised tests run over."""
    module = importlib.import_module(module_name)
    found = set()
    for test in vars(module).values():
        for mark in getattr(test, "pytestmark", []):
            if mark.name != "parametrize":
                continue
            for value in mark.args[1]:
                values = value.values if hasattr(value, "values") else (value,)
                found |= {(v.root, v.id) for v in values if isinstance(v, refvec.RefCase)}
    return found


@pytest.mark.parametrize("kind", sorted(refvec.CONSUMERS))
def test_each_consumer_runs_every_case_of_its_kind(kind: str) -> None:
    """The module CONSUMERS names for a kind has a test parametrised over every case of that kind, in every set."""
    expected = {(case.root, case.id) for case in refvec.iter_cases(kind)}
    missing = expected - parametrised_cases(refvec.CONSUMERS[kind])
    assert not missing, f"{refvec.CONSUMERS[kind]} runs no test on {sorted(i for _, i in missing)}"


def test_every_output_has_its_bound() -> None:
    """Float outputs are bounded; integer ones (e.g. audio window indices) are exact unless given their own bound."""
    for case in refvec.iter_cases():
        by_output = case.spec.get("tolerance_by_output", {})
        for name in case.outputs:
            tolerance = case.tolerance(name)
            if case.tensor(name).is_floating_point():
                assert tolerance.bounded, f"{case.id}: {name} has no tolerance bound"
            elif name not in by_output:
                assert tolerance == refvec.Tolerance(), f"{case.id}: {name} should compare exactly"


def test_a_float_output_without_bound_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LONGCAT_REFVEC", str(fake_set(tmp_path, "scheduler", None)))
    case = next(refvec.iter_cases())
    with pytest.raises(refvec.ToleranceMissing, match="no tolerance bound"):
        case.compare("out.x", torch.ones(4))
    case.compare("out.u", torch.arange(4, dtype=torch.uint8))  # integers without a bound compare exactly
    with pytest.raises(ValueError, match="unknown tolerance keys"):
        refvec.Tolerance.of({"max_abs": 1.0, "maxabs": 1.0})


def test_integer_outputs_are_exact_unless_the_case_bounds_them(monkeypatch, tmp_path: Path) -> None:
    """The case tolerance (for floats) does not loosen integers; a per-output one does."""
    monkeypatch.setenv("LONGCAT_REFVEC", str(fake_set(tmp_path, "scheduler", {"max_abs": 5.0, "rel_l2": 1.0})))
    case = next(refvec.iter_cases())
    off_by_one = torch.tensor([0, 1, 2, 4], dtype=torch.uint8)
    assert case.tolerance("out.u") == refvec.Tolerance()
    with pytest.raises(AssertionError, match="max_abs 1.000e"):
        case.compare("out.u", off_by_one)
    case.spec["tolerance_by_output"] = {"out.u": {"max_abs": 1}}
    case.compare("out.u", off_by_one)


def test_uint8_bounds_count_lsb_relative_l2_and_mismatch_fraction() -> None:
    reference = torch.full((1000,), 100, dtype=torch.uint8)
    one_percent = reference.clone()
    one_percent[:10] += 1
    loose = refvec.Tolerance(max_abs=1, rel_l2=1e-3, max_mismatch_fraction=0.02)
    errors = refvec.assert_close_to_reference(one_percent, reference, loose, "u8")
    assert (errors.max_abs, errors.mismatch_fraction) == (1.0, 0.01)
    with pytest.raises(AssertionError, match="mismatch_fraction 1.000e-02"):
        refvec.assert_close_to_reference(one_percent, reference, refvec.Tolerance(max_mismatch_fraction=0.005), "u8")
    two_lsb = reference.clone()
    two_lsb[0] += 2
    with pytest.raises(AssertionError, match="max_abs 2.000e"):
        refvec.assert_close_to_reference(two_lsb, reference, loose, "u8")
    with pytest.raises(AssertionError, match="rel_l2"):
        refvec.assert_close_to_reference(one_percent, reference, refvec.Tolerance(rel_l2=1e-4), "u8")


def test_a_float_result_against_an_integer_reference_is_an_error() -> None:
    reference = torch.tensor([0, 200, 255], dtype=torch.uint8)
    with pytest.raises(AssertionError, match="cannot be compared"):
        refvec.assert_close_to_reference(reference.float() + 0.4, reference, refvec.Tolerance(max_abs=1), "u8")
    with pytest.raises(AssertionError, match="cannot be compared"):
        refvec.assert_close_to_reference(reference, reference.float(), refvec.Tolerance(max_abs=1), "f")


def test_stepwise_tolerance_is_chosen_by_dtype() -> None:
    for case in refvec.iter_cases("chain"):
        table = case.spec["tolerance_stepwise"]
        assert case.tolerance("out.frames_seg2", stepwise=True) == refvec.Tolerance.of(table["uint8"])
        assert case.tolerance("out.latents_seg2", stepwise=True) == refvec.Tolerance.of(table["float"])
        assert case.tolerance("out.frames_seg2").max_mismatch_fraction is not None
    scheduler = next(refvec.iter_cases("scheduler"))
    with pytest.raises(refvec.ToleranceMissing):
        scheduler.tolerance(scheduler.outputs[0], stepwise=True)


def test_every_case_lists_outputs_that_exist() -> None:
    for case in refvec.iter_cases():
        assert case.outputs, case.id
        missing = [name for name in case.outputs + case.inputs if name not in case.tensors]
        assert not missing, f"{case.id}: {missing}"


def test_missing_set_is_a_failure(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("LONGCAT_REFVEC", str(tmp_path / "nowhere"))
    params = refvec.case_params("dit_forward")
    assert len(params) == 1
    with pytest.raises(AssertionError):
        refvec.require_case(params[0].values[0])


def test_a_set_without_a_consumed_kind_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LONGCAT_REFVEC", str(fake_set(tmp_path, "scheduler", {"max_abs": 1e-3})))
    (param,) = refvec.case_params("chain")
    with pytest.raises(AssertionError, match="no 'chain' case"):
        refvec.require_case(param.values[0])


def test_several_sets_are_all_read(monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(refvec.refvec_roots()[0])
    monkeypatch.setenv("LONGCAT_REFVEC", os.pathsep.join([root, root]))
    ids = [p.id for p in refvec.case_params("scheduler")]
    assert any(i.startswith("set0:") for i in ids) and any(i.startswith("set1:") for i in ids)


def test_uncompared_output_fails() -> None:
    case = next(refvec.iter_cases("scheduler"))
    first = case.outputs[0]
    case.compare(first, case.tensor(first))
    if len(case.outputs) > 1:
        with pytest.raises(AssertionError, match="never compared"):
            case.assert_all_compared()


def test_compare_all_reports_every_failing_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LONGCAT_REFVEC", str(fake_set(tmp_path, "scheduler", {"max_abs": 1e-3})))
    case = next(refvec.iter_cases())
    with pytest.raises(AssertionError, match=r"(?s)out\.x: max_abs.*out\.u: max_abs"):
        case.compare_all({"out.x": torch.zeros(4), "out.u": torch.zeros(4, dtype=torch.uint8)})


def test_tolerance_violation_reports_both_errors() -> None:
    tol = refvec.Tolerance(max_abs=1e-4, rel_l2=1e-5)
    ref = torch.ones(10)
    with pytest.raises(AssertionError, match=r"max_abs=.*rel_l2="):
        refvec.assert_close_to_reference(ref + 1e-2, ref, tol, "x")
    refvec.assert_close_to_reference(ref + 1e-6, ref, tol, "x")
