"""`doctor --selftest`: the whole graph once, in a temporary ComfyUI with tiny random models, in seconds.

It proves the installation end to end (ComfyUI starts, the pack loads, every node runs, an MP4 with sound is written
and downloaded). The video is noise: the models are tiny and random.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave
from pathlib import Path
from typing import Any

from . import workflow as wf
from .client import AvatarGenerator, Inputs
from .errors import AvatarError
from .media import mp4_duration
from .params import GenerationParams
from .progress import ProgressBar
from .tiny_models import BASE, PACK_ROOT, V15, build_layout

EXAMPLES = PACK_ROOT / "examples"
STARTUP_TIMEOUT_S = 180  # cold imports of torch and ComfyUI take ~10 s; slow disks and antivirus scanners more
RUN_TIMEOUT_S = 900  # the tiny graph takes seconds on a GPU and well under a minute on two CPU cores
SIZE = "64x96"  # tiny latents (8x12): the point is to run every node, not to look at the result
NOISE_NOTE = (
    "The video is NOISE: the models were tiny and random, so this proves the installation, not the quality. "
    "Real videos need the model files listed above."
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _say(text: str) -> None:
    print(f"[selftest] {text}", file=sys.stderr, flush=True)


def _install_pack(base: Path) -> None:
    """The pack in the temporary custom_nodes (a link; a copy where links are not allowed)."""
    target = base / "custom_nodes" / PACK_ROOT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.symlink_to(PACK_ROOT, target_is_directory=True)
    except OSError:  # e.g. Windows without developer mode
        shutil.copytree(PACK_ROOT, target, ignore=shutil.ignore_patterns(".git", "tests", "__pycache__"))


def _start(comfyui: Path, base: Path, port: int) -> subprocess.Popen[bytes]:
    """ComfyUI on the CPU with `base` as its base directory (its own models, input, output, custom nodes)."""
    command = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
               "--base-directory", str(base), "--disable-auto-launch"]  # fmt: skip
    if "--database-url" in (comfyui / "comfy" / "cli_args.py").read_text(errors="replace"):
        command += ["--database-url", "sqlite:///:memory:"]  # keeps the user's database untouched
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    log = (base / "comfyui.log").open("wb")
    return subprocess.Popen(command, cwd=comfyui, stdout=log, stderr=subprocess.STDOUT, env=env)


def _wait_ready(process: subprocess.Popen[bytes], url: str, base: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AvatarError(f"ComfyUI exited with code {process.returncode} while starting:\n{_log_tail(base)}")
        try:
            with urllib.request.urlopen(f"{url}/system_stats", timeout=2):
                return
        except OSError:
            time.sleep(0.25)  # poll four times a second: start-up takes seconds
    raise AvatarError(f"ComfyUI did not answer within {STARTUP_TIMEOUT_S} s:\n{_log_tail(base)}")


def _log_tail(base: Path, lines: int = 30) -> str:
    path = base / "comfyui.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


def selftest_workflow() -> dict[str, Any]:
    """The v1.5 workflow pointed at the tiny bf16-layout DiT, without LoRA, 2 full steps with both guidances."""
    workflow = wf.load_workflow(wf.find_workflow("1.5"))
    choices = {
        "LongCatAvatarModelLoader": {"model": f"longcat/{V15}/base_model", "lora": "none"},
        "LongCatAvatarAudioEncoderLoader": {"audio_encoder": f"longcat/{V15}/whisper-large-v3"},
        "LongCatAvatarVAELoader": {"vae": f"longcat/{BASE}/vae"},
        "LongCatAvatarTextEncoderLoader": {"text_encoder": f"longcat/{BASE}/text_encoder"},
    }
    for node in workflow.values():
        node["inputs"].update({k: v for k, v in choices.get(node["class_type"], {}).items() if k in node["inputs"]})
    return workflow


def _generate(url: str, output: Path, quiet: bool) -> tuple[float, float]:
    """Run the graph once; returns (video seconds, speech seconds)."""
    params = GenerationParams(
        steps=2, guidance=2.0, text_guidance=2.0, seed=0, resolution=SIZE, distilled="off", separate_vocals=False
    )  # no separation: its tiny model would need the onnx package to build, and onnxruntime is optional
    generator = AvatarGenerator(url, workflow=selftest_workflow(), timeout_s=RUN_TIMEOUT_S)
    bar = None if quiet else ProgressBar(label="[selftest] ")
    inputs = Inputs(EXAMPLES / "portrait.png", audio=EXAMPLES / "speech.wav")
    asyncio.run(generator.arun(inputs, params, output, bar))
    with wave.open(str(EXAMPLES / "speech.wav"), "rb") as speech:
        speech_s = speech.getnframes() / speech.getframerate()
    return mp4_duration(output.read_bytes()) or 0.0, speech_s


def run_selftest(comfyui: Path | None, keep: Path | None = None, quiet: bool = False) -> dict[str, Any]:
    """Build tiny models, start a temporary ComfyUI, run the graph, check the MP4; a result dict for the report."""
    if comfyui is None or not (comfyui / "main.py").is_file():
        return {"ok": False, "message": "failed: ComfyUI's folder (with main.py) was not found; pass --comfyui DIR"}
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="longcat-selftest-"))
    process = None
    try:
        _say("building tiny random models (no download)")
        build_layout(base / "models")
        _install_pack(base)
        port = _free_port()
        _say(f"starting a temporary ComfyUI on port {port} from {comfyui}")
        process = _start(comfyui, base, port)
        _wait_ready(process, f"http://127.0.0.1:{port}", base)
        _say("running the whole graph (loaders, encoders, sampler, decode, Video Combine)")
        output = base / "selftest.mp4"
        video_s, speech_s = _generate(f"http://127.0.0.1:{port}", output, quiet)
        if abs(video_s - speech_s) > 1 / 25 + 1e-6:  # one frame at 25 fps
            raise AvatarError(f"the MP4 lasts {video_s:.2f} s but the speech {speech_s:.2f} s")
        kept = ""
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            kept = f" Kept as {shutil.copy(output, keep / 'longcat_selftest.mp4')}."
        seconds = time.monotonic() - started
        message = (f"passed in {seconds:.0f} s: ComfyUI started, the pack loaded, every node ran and a {video_s:.2f} s "
                   f"MP4 (H.264 + AAC, {SIZE}) came back.{kept} {NOISE_NOTE}")  # fmt: skip
        return {"ok": True, "message": message, "seconds": round(seconds, 1), "video_s": video_s}
    except (AvatarError, OSError, subprocess.SubprocessError) as error:
        tail = _log_tail(base)
        return {"ok": False, "message": f"failed: {error}", "log_tail": tail}
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(base, ignore_errors=True)
