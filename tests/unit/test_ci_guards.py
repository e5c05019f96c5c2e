"""The suite's guards, run through a real pytest: a time limit on every test (longer for server tests) and a minimum
test count per folder for a whole-suite run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.suite_limits import MIN_TESTS_ENV, SERVER_TIMEOUT_S, UNIT_TIMEOUT_S

REPO_ROOT = Path(__file__).resolve().parents[2]
UNIT_FILE = "tests/unit/test_cli_params.py"  # light: collecting it imports no torch
SERVER_FILE = "tests/comfy/test_client_follow.py"  # collected only: no server starts
SHOW_LIMITS = """
import pytest

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:
        marker = item.get_closest_marker("timeout")
        print("LIMIT", item.nodeid, marker.args[0] if marker else None)
"""


def _pytest(tmp_path: Path, *args: str, minimum: str | None = None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "show_limits.py").write_text(SHOW_LIMITS)
    environment = {k: v for k, v in os.environ.items() if k != MIN_TESTS_ENV}
    environment.update({MIN_TESTS_ENV: minimum} if minimum else {}, PYTHONPATH=str(tmp_path))
    command = [sys.executable, "-m", "pytest", "-p", "show_limits", "-p", "no:cacheprovider", "-q", "-s", *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(sys.modules.get("pytest_timeout") is None, reason="pytest-timeout is not installed")
def test_time_limits_and_too_few_tests(tmp_path: Path) -> None:
    result = _pytest(tmp_path, "--collect-only", UNIT_FILE, SERVER_FILE, minimum="unit=100000,comfy=1")
    limits = {line.split()[1]: line.split()[2] for line in result.stdout.splitlines() if line.startswith("LIMIT ")}
    assert {v for k, v in limits.items() if k.startswith(UNIT_FILE)} == {str(UNIT_TIMEOUT_S)}, result.stdout
    assert {v for k, v in limits.items() if k.startswith(SERVER_FILE)} == {str(SERVER_TIMEOUT_S)}
    assert SERVER_TIMEOUT_S >= 300
    assert result.returncode == 1, result.stdout + result.stderr
    assert "too few tests collected (tests/unit:" in result.stdout + result.stderr
    assert "tests/comfy" not in result.stdout.split("too few tests collected")[1]  # comfy had enough


def test_arguments_that_select_nothing_are_not_a_pass(tmp_path: Path) -> None:
    result = _pytest(tmp_path, UNIT_FILE, "-k", "no_test_is_called_this", minimum="unit=0")
    assert result.returncode == 5, result.stdout + result.stderr  # .ci/run turns this exit status into a failure
