"""`doctor --selftest`: the whole graph once, in a temporary ComfyUI with tiny random models, in seconds.

It proves the installation end to end (ComfyUI starts, the pack loads, every node runs, an MP4 with sound is written
and downloaded). The video is noise: the models are tiny and random.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

from . import workflow as wf
from .client import AvatarGenerator, Inputs
from .comfy_launcher import OFFLINE_ENV, PACK_ROOT, ComfyLauncher
from .errors import AvatarError
from .interruptible import run_interruptibly
from .media import mp4_duration
from .params import GenerationParams
from .progress import ProgressBar
from .shared import model_catalogue as catalogue
from .tiny_models import build_layout

EXAMPLES = PACK_ROOT / "examples"
RUN_TIMEOUT_S = 900  # the tiny graph takes seconds on a GPU and well under a minute on two CPU cores
SIZE = "64x96"  # tiny latents (8x12): the point is to run every node, not to look at the result
NOISE_NOTE = (
    "The video is NOISE: the models were tiny and random, so this proves the installation, not the quality. "
    "Real videos need the model files listed above."
)


def _say(text: str) -> None:
    print(f"[selftest] {text}", file=sys.stderr, flush=True)


def selftest_workflow() -> dict[str, Any]:
    """The v1.5 workflow pointed at the tiny bf16-layout DiT, without LoRA, 2 full steps with both guidances."""
    workflow = wf.load_workflow(wf.find_workflow("1.5"))
    c = catalogue
    choices = {
        "LongCatAvatarModelLoader": {"model": c.DIT_V15_BF16.choice, "lora": "none"},
        "LongCatAvatarAudioEncoderLoader": {"audio_encoder": c.WHISPER.choice},
        "LongCatAvatarVAELoader": {"vae": c.WAN_VAE.choice},
        "LongCatAvatarTextEncoderLoader": {"text_encoder": c.UMT5.choice},
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
    run_interruptibly(generator.arun(inputs, params, output, bar))
    with wave.open(str(EXAMPLES / "speech.wav"), "rb") as speech:
        speech_s = speech.getnframes() / speech.getframerate()
    return mp4_duration(output.read_bytes()) or 0.0, speech_s


def run_selftest(comfyui: Path | None, keep: Path | None = None, quiet: bool = False) -> dict[str, Any]:
    """Build tiny models, start a temporary ComfyUI, run the graph, check the MP4; a result dict for the report."""
    if comfyui is None or not (comfyui / "main.py").is_file():
        return {"ok": False, "message": "failed: ComfyUI's folder (with main.py) was not found; pass --comfyui DIR"}
    started = time.monotonic()
    server = ComfyLauncher(comfyui, extra_args=["--cpu"], env=OFFLINE_ENV)  # tiny models: the CPU is enough
    try:
        _say("building tiny random models (no download)")
        build_layout(server.models_dir)
        _say(f"starting a temporary ComfyUI on port {server.port} from {comfyui}")
        server.start()
        _say("running the whole graph (loaders, encoders, sampler, decode, Video Combine)")
        output = server.base_dir / "selftest.mp4"
        video_s, speech_s = _generate(server.url, output, quiet)
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
        return {"ok": False, "message": f"failed: {error}", "log_tail": server.log_tail(30)}
    finally:
        server.stop()
