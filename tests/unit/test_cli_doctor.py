"""`doctor`: torch / FFmpeg / espeak-ng facts, and which model files it finds per version (official layouts, single
files recognised by their tensors, extra_model_paths.yaml), with sizes and download pages for what is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from longcat_avatar import doctor
from longcat_avatar.model_inventory import classify, safetensors_keys
from support.avatar_graph import ensure_tiny_models
from support.comfy_server import REPO_ROOT
from support.refvec import refvec_roots
from support.suite_limits import UNIT_TIMEOUT_S
from support.tiny_models import build_tiny_umt5, build_tiny_vae, write_comfy_umt5_file, write_comfy_vae_file


def _report(comfyui: Path, *extra: Path) -> dict:
    return doctor.collect(Namespace(comfyui=comfyui, models_dir=list(extra), selftest=False))


def _checks(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_no_model_files_lists_what_to_download(tmp_path: Path) -> None:
    report = _report(tmp_path)
    assert report["ready"] == {"1.5": False, "1.0": False}
    checks = _checks(report)
    dit = checks["v1.5 avatar model (DiT)"]
    assert dit["status"] == "missing"
    advice = " ".join(dit["advice"])
    assert "15.9 GB" in advice and "31.7 GB" in advice
    assert "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar-1.5" in advice
    assert str(tmp_path / "models" / "longcat" / "LongCat-Video-Avatar-1.5" / "base_model_int8") in advice
    assert checks["v1.5 distillation LoRA"]["status"] == "warn"  # optional
    assert "6.2 GB" in " ".join(checks["v1.5 audio encoder (whisper-large-v3)"]["advice"])
    assert "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar" in " ".join(
        checks["v1.0 audio encoder (chinese-wav2vec2-base)"]["advice"]
    )
    for name in ("torch", "FFmpeg (MP4 writing)", "espeak-ng"):
        assert checks[name]["status"] == "ok", checks[name]
    assert "libx264" not in checks["FFmpeg (MP4 writing)"]["detail"]  # nothing lacking


def test_official_layouts_are_found(tmp_path: Path) -> None:
    ensure_tiny_models(tmp_path / "models")
    report = _report(tmp_path)
    assert report["ready"] == {"1.5": True, "1.0": True}
    checks = _checks(report)
    found = checks["v1.5 avatar model (DiT)"]["detail"]
    assert "v1.5 int8 DiT at" in found and "v1.5 bf16 DiT at" in found
    assert checks["v1.5 distillation LoRA"]["status"] == "ok"
    assert checks["v1.0 multi-speaker DiT"]["status"] == "ok"
    assert str(tmp_path / "models" / "longcat" / "LongCat-Video" / "vae") in checks["v1.5 VAE (Wan 2.1)"]["detail"]


def test_single_files_are_recognised_by_their_tensors(tmp_path: Path) -> None:
    refvec = refvec_roots()[0]
    models = tmp_path / "models"
    files = {
        models / "diffusion_models" / "my_avatar.safetensors": refvec / "dit_v1.5" / "diffusion_pytorch_model.safetensors",
        models / "loras" / "sub" / "distill.safetensors": refvec / "lora_v1.5" / "dmd_lora.safetensors",
        models / "audio_encoders" / "encoder.safetensors": refvec / "audio" / "whisper_tiny" / "model.safetensors",
        models / "vae" / "not_a_model.safetensors": REPO_ROOT / "examples" / "portrait.png",
    }  # fmt: skip
    for target, source in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    write_comfy_vae_file(build_tiny_vae(tmp_path / "vae_src"), models / "vae" / "wan.safetensors")
    write_comfy_umt5_file(build_tiny_umt5(tmp_path / "umt5_src"), models / "text_encoders" / "t5.safetensors")
    kinds = {p.name: classify(safetensors_keys(p)) for p in models.rglob("*.safetensors")}
    assert kinds == {
        "my_avatar.safetensors": "dit_v1.5",
        "distill.safetensors": "lora",
        "encoder.safetensors": "whisper",
        "not_a_model.safetensors": None,
        "wan.safetensors": "vae",
        "t5.safetensors": "umt5",
    }
    report = _report(tmp_path)
    assert report["ready"]["1.5"] is True and report["ready"]["1.0"] is False
    assert "single-file v1.5 DiT at" in _checks(report)["v1.5 avatar model (DiT)"]["detail"]


def test_v10_dit_is_told_apart_by_its_audio_width() -> None:
    v10 = {"x_embedder.proj.weight": [4096, 16, 1, 2, 2], "audio_proj.proj1.weight": [512, 5 * 12 * 768]}
    v15 = {"x_embedder.proj.weight": [4096, 16, 1, 2, 2], "audio_proj.proj1.weight": [512, 5 * 5 * 1280]}
    assert (classify(v10), classify(v15)) == ("dit_v1.0", "dit_v1.5")


def test_extra_model_paths_yaml_and_models_dir(tmp_path: Path) -> None:
    comfyui, elsewhere = tmp_path / "ComfyUI", tmp_path / "disk2"
    comfyui.mkdir()
    ensure_tiny_models(elsewhere / "models")
    (comfyui / "extra_model_paths.yaml").write_text(f"mine:\n  base_path: {elsewhere / 'models'}\n  longcat: longcat\n")
    assert _report(comfyui)["ready"]["1.5"] is True
    assert _report(tmp_path / "empty", elsewhere / "models")["ready"]["1.5"] is True


def test_command_line_exit_codes_and_json(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "longcat_avatar", "doctor", *args]
        return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=UNIT_TIMEOUT_S)

    empty = run("--comfyui", str(tmp_path), "--json")
    assert empty.returncode == 1
    assert json.loads(empty.stdout)["ready"] == {"1.5": False, "1.0": False}
    text = run("--comfyui", str(tmp_path))
    assert "[missing] v1.5 avatar model (DiT)" in text.stdout and "v1.5: not ready" in text.stdout
    ensure_tiny_models(tmp_path / "models")
    ready = run("--comfyui", str(tmp_path))
    assert ready.returncode == 0, ready.stdout
    assert "v1.5: ready" in ready.stdout and "v1.0: ready" in ready.stdout


@pytest.mark.parametrize("content", [b"", b"\xff" * 8 + b"{}", b"\x02\x00\x00\x00\x00\x00\x00\x00{}"])
def test_broken_files_are_ignored(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(content)
    assert safetensors_keys(path) == {}
