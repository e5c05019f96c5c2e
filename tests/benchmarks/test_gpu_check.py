"""benchmarks/gpu_check.py runs end to end on the CPU with the tiny models: every section must report ok."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.comfy_server import REPO_ROOT, find_comfyui_dir

SECTIONS = {"1_environment", "2_engine_tiny", "3_dit_forward", "4_capped_24gb", "5_vae_decode", "6_kv_cache_host"}


@pytest.mark.slow
def test_gpu_check_tiny_on_cpu_reports_every_section_ok(tmp_path: Path) -> None:
    """`--tiny --device cpu` (with ComfyUI's ModelPatcher for the capped section) writes a report, all sections ok."""
    command = [sys.executable, "benchmarks/gpu_check.py", "--tiny", "--device", "cpu", "--out", str(tmp_path)]
    command += ["--comfyui", str(find_comfyui_dir())]
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    report = json.loads((tmp_path / "gpu_report.json").read_text())
    sections = report["sections"]
    failed = {name: s.get("traceback") for name, s in sections.items() if not s["ok"]}
    assert set(sections) == SECTIONS and not failed, failed
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert sections["4_capped_24gb"]["path"] == "comfy_model_patcher" and sections["4_capped_24gb"]["offloaded_gb"] > 0
    assert sections["6_kv_cache_host"]["equal"] and sections["5_vae_decode"]["streamed_equals_whole"]
    assert sections["3_dit_forward"]["int8"]["64x96"]["finite"] and report["tiny"] is True
