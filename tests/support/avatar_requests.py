"""Requests to POST /longcat/avatar for the load, soak and fault tests: the cheapest real job (a tiny size, one step,
no distillation), made distinct per job so every node runs again instead of coming from ComfyUI's cache."""

from __future__ import annotations

import base64
import io
import time
import wave
from pathlib import Path
from typing import Any

import requests

from longcat_avatar import workflow as wf
from longcat_avatar.params import GenerationParams
from support.comfy_server import REPO_ROOT, ComfyServer

ROUTE = "/longcat/avatar"
EXAMPLES = REPO_ROOT / "examples"
TINY = {"resolution": "32x32", "num_inference_steps": 1, "distilled": "off", "fps": 25}  # the cheapest real job
SPEECH_S = 1  # seconds of speech per job
POLL_S = 0.25  # how often a test reads a job's state
JOB_WAIT_S = 600  # only a hung server takes this long for a tiny job; the test then fails saying so


def speech(variant: int = 0) -> bytes:
    """The example speech's first second (25 frames: the cheapest video) with `variant` samples of silence appended:
    different bytes, so LoadAudio and everything after it run again."""
    with wave.open(str(EXAMPLES / "speech.wav"), "rb") as source:
        params = source.getparams()
        frames = source.readframes(min(params.framerate * SPEECH_S, source.getnframes()))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as target:
        target.setparams(params)
        target.writeframes(frames + b"\0" * (params.sampwidth * params.nchannels * variant))
    return buffer.getvalue()


def job_body(variant: int, **changes: Any) -> dict[str, Any]:
    """A tiny request whose audio, prompt and seed differ with `variant`."""
    body = {
        "reference_image": base64.b64encode((EXAMPLES / "portrait.png").read_bytes()).decode(),
        "audio": base64.b64encode(speech(variant)).decode(),
        "prompt": f"A person talks to the camera, take {variant}.",
        "seed": 1000 + variant,
        **TINY,
    }
    body.update(changes)
    return body


def post(server: ComfyServer, body: dict[str, Any], timeout: float = JOB_WAIT_S) -> requests.Response:
    """POST /longcat/avatar."""
    return requests.post(f"{server.url}{ROUTE}", json=body, timeout=timeout)


def state(server: ComfyServer, job_id: str) -> requests.Response:
    """GET /longcat/avatar/{job_id}."""
    return requests.get(f"{server.url}{ROUTE}/{job_id}", timeout=60)


def wait_done(server: ComfyServer, job_id: str) -> requests.Response:
    """Poll a job until it ended; returns the answer that says so."""
    deadline = time.monotonic() + JOB_WAIT_S
    while time.monotonic() < deadline:
        answer = state(server, job_id)
        if answer.status_code != 200 or answer.json()["status"] not in ("queued", "running"):
            return answer
        time.sleep(POLL_S)
    raise AssertionError(f"job {job_id} did not end within {JOB_WAIT_S}s")


def history(server: ComfyServer, prompt_id: str) -> dict[str, Any]:
    """A prompt's /history entry, once it has one."""
    deadline = time.monotonic() + JOB_WAIT_S
    while not (entry := server.history(prompt_id)):
        if time.monotonic() > deadline:
            raise AssertionError(f"prompt {prompt_id} has no history after {JOB_WAIT_S}s")
        time.sleep(POLL_S)
    return entry


def load(server: ComfyServer) -> dict[str, Any]:
    """GET /longcat/avatar: active jobs, record bytes, limits."""
    return requests.get(f"{server.url}{ROUTE}", timeout=60).json()


def wait_idle(server: ComfyServer) -> None:
    """Wait until the endpoint holds no queued or running job (an earlier test's may still be finishing)."""
    deadline = time.monotonic() + JOB_WAIT_S
    while load(server)["active_jobs"]:
        if time.monotonic() > deadline:
            raise AssertionError(f"the endpoint still holds jobs after {JOB_WAIT_S}s: {load(server)}")
        time.sleep(POLL_S)


def api_inputs(server: ComfyServer) -> list[Path]:
    """The files in input/longcat_avatar_api (the endpoint's jobs' media)."""
    folder = server.input_dir / "longcat_avatar_api"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def direct_prompt(server: ComfyServer, variant: int, tmp_path: Path, audio: bytes | None = None) -> dict[str, Any]:
    """The v1.5 workflow, tiny and distinct, with its media uploaded (as a graph user would run it); `audio`
    replaces the default speech of `variant`."""
    path = tmp_path / f"speech-{variant}.wav"
    path.write_bytes(audio if audio is not None else speech(variant))
    params = GenerationParams(steps=1, fps=25, seed=300 + variant, resolution=TINY["resolution"], distilled="off",
                              prompt=f"A person talks, take {variant}.")  # fmt: skip
    values = wf.generation_values(params)
    values["image"] = server.upload(EXAMPLES / "portrait.png", subfolder="fault")
    values["audio"] = server.upload(path, subfolder="fault")
    values["filename_prefix"] = f"fault/take{variant}"
    return wf.fill_workflow(wf.load_workflow(wf.find_workflow("1.5", tts=False)), values)
