"""`doctor --selftest`: the whole graph in a temporary ComfyUI with tiny random models, said plainly to be noise."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from support.comfy_server import REPO_ROOT, find_comfyui_dir
from support.video_probe import decode_frames, probe

pytestmark = [pytest.mark.comfy, pytest.mark.slow]


def doctor(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "longcat_avatar", "doctor", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)


def test_selftest_runs_the_whole_graph(tmp_path: Path) -> None:
    comfyui = find_comfyui_dir()
    before = sorted(p.relative_to(comfyui) for p in comfyui.rglob("*") if "__pycache__" not in p.parts)
    result = doctor("--comfyui", str(comfyui), "--selftest", "--json", "--keep", str(tmp_path / "kept"))
    report = json.loads(result.stdout)
    assert report["selftest"]["ok"] is True, report["selftest"]
    assert result.returncode == 0  # the installation works, even before any model download
    message = report["selftest"]["message"]
    assert message.startswith("passed in") and "NOISE" in message and "tiny and random" in message
    assert "[selftest] building tiny random models" in result.stderr
    kept = tmp_path / "kept" / "longcat_selftest.mp4"
    info = probe(kept)
    with wave.open(str(REPO_ROOT / "examples" / "speech.wav"), "rb") as speech:
        speech_s = speech.getnframes() / speech.getframerate()
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 64, 96)
    assert abs(info.audio_duration - speech_s) <= 1 / 25
    frames = decode_frames(kept).astype(float)
    assert frames.std() > 1.0  # random models still draw something; the frames are not a flat colour
    after = sorted(p.relative_to(comfyui) for p in comfyui.rglob("*") if "__pycache__" not in p.parts)
    assert after == before  # the user's ComfyUI folder (models, input, output) is left untouched


def test_selftest_without_comfyui_fails_clearly(tmp_path: Path) -> None:
    result = doctor("--comfyui", str(tmp_path), "--selftest", "--json")
    assert result.returncode == 1
    selftest = json.loads(result.stdout)["selftest"]
    assert selftest["ok"] is False and "pass --comfyui DIR" in selftest["message"]
