"""`python -m longcat_avatar estimate`: the memory plan and time of a run from the shipped configs."""

from __future__ import annotations

import subprocess
import sys

from pipeline.memory.estimate import VideoShape, shipped_configs
from pipeline.memory.plan import GB, plan_memory
from support.comfy_server import REPO_ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The command line from the repository folder."""
    command = [sys.executable, "-m", "longcat_avatar", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_estimator_cli_prints_resident_offloaded_peak_and_time() -> None:
    """int8, 480p, 10 s on 16 GB: three segments, the plan's figures in GB and the time at the stated TFLOP/s."""
    result = run("estimate", "--version", "1.5", "--format", "int8", "--resolution", "480p", "--seconds", "10",
                 "--vram", "16", "--tflops", "100")  # fmt: skip
    assert result.returncode == 0, result.stderr
    configs = shipped_configs()
    plan = plan_memory(configs, VideoShape(480, 832, configs.text_tokens), "int8", 16 * 10**9)
    out = result.stdout
    assert "832x480, 10 s" in out and "- fits" in out and "3 segment(s) x 8/8 steps" in out
    assert f"resident {plan.resident / GB:.2f} GB, offloaded {plan.offloaded / GB:.2f} GB" in out
    assert f"({plan.offloaded_blocks} of 48 blocks)" in out and plan.offloaded_blocks > 0
    assert f"peak {plan.peak / GB:.2f} GB" in out and "at 100 TFLOP/s" in out


def test_estimator_cli_refuses_unknown_formats_and_keeps_torch_out_of_imports() -> None:
    """A wrong --format names the choices; importing the command line does not import torch."""
    result = run("estimate", "--format", "q3_k")
    assert result.returncode == 2 and "unknown weight format 'q3_k'" in result.stderr and "int8" in result.stderr
    probe = "import sys, longcat_avatar.cli; print('torch' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True)
    assert imported.stdout.strip() == "False", imported.stderr
