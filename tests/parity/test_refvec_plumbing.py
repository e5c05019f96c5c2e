"""The parity plumbing itself: sets are found, cases are complete, and every output is compared."""

from __future__ import annotations

import os

import pytest
import torch

from support import refvec


def test_default_set_is_found() -> None:
    roots = refvec.refvec_roots()
    assert roots, "no vector set found"
    assert all((root / "cases.json").is_file() for root in roots)


def test_every_kind_has_cases() -> None:
    kinds = {case.kind for case in refvec.iter_cases()}
    assert {"dit_forward", "int8", "lora", "loop", "audio", "scheduler"} <= kinds


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


def test_tolerance_violation_reports_both_errors() -> None:
    tol = refvec.Tolerance(max_abs=1e-4, rel_l2=1e-5)
    ref = torch.ones(10)
    with pytest.raises(AssertionError, match=r"max_abs=.*rel_l2="):
        refvec.assert_close_to_reference(ref + 1e-2, ref, tol, "x")
    refvec.assert_close_to_reference(ref + 1e-6, ref, tol, "x")
