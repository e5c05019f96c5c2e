"""Jobs of the HTTP endpoint: write the inputs into input/, queue the filled workflow, watch it, read the MP4."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import execution
import folder_paths
from server import PromptServer

from ..longcat_avatar import workflow as wf
from ..longcat_avatar.api_payload import AvatarRequest, PayloadError
from ..longcat_avatar.client import find_video
from ..longcat_avatar.comfy_http import format_prompt_error
from ..longcat_avatar.media import mp4_duration

log = logging.getLogger(__name__)

API_SUBFOLDER = "longcat_avatar_api"  # inside ComfyUI's input and output folders; nothing is written elsewhere
POLL_S = 0.25  # how often the queue's history is checked; generation steps take seconds, so this costs nothing
KEEP_FINISHED = 100  # finished jobs kept for GET /longcat/avatar/{job_id}


@dataclass
class Job:
    """One request on its way through the queue."""

    job_id: str
    request: AvatarRequest
    fps: float | None
    inputs: list[Path]
    status: str = "queued"
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task[None] | None = None  # held here so the event loop does not drop the running task

    def describe(self) -> dict[str, Any]:
        """The job's state as JSON (the result's fields once it succeeded)."""
        state: dict[str, Any] = {"job_id": self.job_id, "status": self.status, "seed": self.request.params.seed}
        if self.error:
            state["error"] = self.error
        return {**state, **(self.result or {})}


JOBS: dict[str, Job] = {}


def inside(folder: str | Path, path: Path) -> bool:
    """True when `path` resolves to a place inside `folder`."""
    return path.resolve().is_relative_to(Path(folder).resolve())


def _write_inputs(request: AvatarRequest) -> tuple[list[Path], dict[str, str]]:
    """The request's media as files in input/longcat_avatar_api/, and the names LoadImage/LoadAudio take.

    Names are the content's hash, so a repeated request reuses ComfyUI's cached results of unchanged nodes.
    """
    root = Path(folder_paths.get_input_directory())
    folder = root / API_SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    media = [("image", request.image, request.image_ext)]
    if request.audio is not None and request.audio_ext is not None:
        media.append(("audio", request.audio, request.audio_ext))
    paths, names = [], {}
    for role, data, extension in media:
        digest = hashlib.sha256(data).hexdigest()[:32]  # 128 bits: no collisions between different uploads
        path = folder / f"{role}-{digest}{extension}"  # built from the hash only, never from request data
        if not inside(root, path):  # pragma: no cover - the name has no separators
            raise PayloadError(400, "refusing to write outside ComfyUI's input folder")
        path.write_bytes(data)
        paths.append(path)
        names[role] = f"{API_SUBFOLDER}/{path.name}"
    return paths, names


def build_prompt(job_id: str, request: AvatarRequest, names: dict[str, str]) -> dict[str, Any]:
    """The workflow of the request's version, filled with its media and parameters."""
    template = wf.load_workflow(wf.find_workflow(request.params.version, tts=request.text is not None))
    values = wf.generation_values(request.params)
    values.update(names)
    values["filename_prefix"] = f"{API_SUBFOLDER}/{job_id}"
    if request.text is not None:
        values["speech_text"], values["voice"] = request.text, request.voice
    return wf.fill_workflow(template, values)


async def _queue(job_id: str, prompt: dict[str, Any]) -> None:
    """Validate and queue the prompt exactly as POST /prompt does; refusals become PayloadError."""
    server = PromptServer.instance
    valid = await execution.validate_prompt(job_id, prompt, None)
    if not valid[0]:
        reason = format_prompt_error({"error": valid[1], "node_errors": valid[3]})
        tts_node = any(prompt.get(n, {}).get("class_type") == wf.TTS_NODE for n in valid[3] or {})
        # The caller's voice is the caller's fault (422); a missing model or node is the server's (503).
        raise PayloadError(422 if tts_node else 503, f"the workflow was refused: {reason}")
    number = server.number
    server.number += 1
    extra_data = {"create_time": int(time.time() * 1000)}  # what POST /prompt records (milliseconds)
    server.prompt_queue.put((number, job_id, prompt, extra_data, valid[2], {}))


async def start_job(request: AvatarRequest) -> Job:
    """Write the inputs, queue the workflow and start watching it."""
    _forget_old_jobs()
    job_id = str(uuid.uuid4())
    paths, names = _write_inputs(request)
    job = JOBS[job_id] = Job(job_id, request, request.params.fps, paths)  # registered first: its files are in use
    try:
        prompt = build_prompt(job_id, request, names)
        if job.fps is None:
            job.fps = wf.read_value(prompt, "fps")
        await _queue(job_id, prompt)
    except BaseException:
        JOBS.pop(job_id, None)
        _remove(paths)
        raise
    job.watcher = asyncio.get_running_loop().create_task(_watch(job))
    return job


async def _watch(job: Job) -> None:
    """Wait for the job's history entry, then record its result or error and remove its input files."""
    queue = PromptServer.instance.prompt_queue
    try:
        while True:
            entry = queue.get_history(prompt_id=job.job_id).get(job.job_id)
            if entry:
                break
            running = any(item[1] == job.job_id for item in queue.get_current_queue_volatile()[0])
            job.status = "running" if running else "queued"
            await asyncio.sleep(POLL_S)
        _finish(job, entry)
    except Exception as error:  # a watcher must always release its waiters
        job.status, job.error = "error", f"{type(error).__name__}: {error}"
    finally:
        _remove(job.inputs, finished=job)
        job.done.set()


def _finish(job: Job, entry: dict[str, Any]) -> None:
    """Fill the job's result from its history entry (or its error)."""
    status = entry.get("status") or {}
    if status.get("status_str") != "success":
        messages = [data for kind, data in status.get("messages", []) if kind.startswith("execution_")]
        failure = next((m for m in messages if "exception_message" in m), None)
        if failure is None:
            job.status, job.error = "error", "the generation was interrupted on the server"
        else:
            reason = f"{failure.get('node_type')}: {failure.get('exception_message')}"
            job.status, job.error = "error", f"the generation failed in {reason}"
        return
    item = find_video(entry)
    output_root = Path(folder_paths.get_output_directory())
    path = output_root / item.get("subfolder", "") / item["filename"] if item else None
    if path is None or not inside(output_root, path) or not path.is_file():
        job.status, job.error = "error", "the workflow finished without writing an MP4"
        return
    data = path.read_bytes()
    job.status = "success"
    job.result = {
        "video": base64.b64encode(data).decode("ascii"),
        "seed": job.request.params.seed,
        "duration_s": mp4_duration(data),
        "fps": job.fps,
        "filename": path.relative_to(output_root).as_posix(),
    }


def _remove(paths: list[Path], finished: Job | None = None) -> None:
    """Delete input files that no other unfinished job still reads."""
    in_use = {p for job in JOBS.values() if job is not finished and not job.done.is_set() for p in job.inputs}
    for path in paths:
        if path not in in_use:
            path.unlink(missing_ok=True)


def _forget_old_jobs() -> None:
    """Keep at most KEEP_FINISHED finished jobs."""
    finished = [job_id for job_id, job in JOBS.items() if job.done.is_set()]
    for job_id in finished[: max(0, len(finished) - KEEP_FINISHED)]:
        JOBS.pop(job_id, None)
