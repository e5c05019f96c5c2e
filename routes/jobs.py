"""Jobs of the HTTP endpoint: admit within the bounds, write the inputs into input/, queue the filled workflow through
the server's own POST /prompt, watch it, remove the inputs on every ending, and keep a small record of the result.

Records hold no media: a finished job's video stays in output/ and is read when asked for. Records expire after a
time and the oldest are dropped when their bytes exceed the bound (routes/limits.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import folder_paths
from server import PromptServer

from ..longcat_avatar import workflow as wf
from ..longcat_avatar.api_payload import AvatarRequest, PayloadError
from ..longcat_avatar.client import find_video
from ..longcat_avatar.comfy_http import format_prompt_error
from ..longcat_avatar.job_progress import JobProgress
from ..longcat_avatar.media import mp4_duration
from ..longcat_avatar.params import GenerationParams
from .limits import RETRY_AFTER_S, route_limits
from .loopback import post_json
from .progress import class_types, current_progress

log = logging.getLogger(__name__)

API_SUBFOLDER = "longcat_avatar_api"  # inside ComfyUI's input and output folders; nothing is written elsewhere
POLL_S = 0.25  # how often the queue's history is checked; generation steps take seconds, so this costs nothing


class BusyError(PayloadError):
    """The endpoint holds as many jobs as it may: 429 with Retry-After."""

    def __init__(self, active: int, limit: int) -> None:
        super().__init__(
            429,
            f"the server already holds {active} LongCat Avatar jobs (the limit is {limit}); retry in "
            f"{RETRY_AFTER_S} s (set LONGCAT_AVATAR_MAX_JOBS on the server to change the limit)",
        )
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


@dataclass
class Job:
    """One request on its way through the queue, then its small record."""

    job_id: str
    params: GenerationParams
    fps: float | None
    inputs: list[Path]
    status: str = "queued"
    error: str | None = None
    filename: str | None = None  # inside output/, once it succeeded
    duration_s: float | None = None
    finished_at: float | None = None
    nodes: dict[str, str] = field(default_factory=dict)  # node id -> class type, to name each node's phase
    progress: JobProgress = field(default_factory=JobProgress)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task[None] | None = None  # held here so the event loop does not drop the running task

    def describe(self) -> dict[str, Any]:
        """The job's state as JSON, without the video (see read_video)."""
        state: dict[str, Any] = {"job_id": self.job_id, "status": self.status, "seed": self.params.seed}
        state["progress"] = self.progress.as_json()
        if self.error:
            state["error"] = self.error
        if self.filename:
            state.update(duration_s=self.duration_s, fps=self.fps, filename=self.filename)
        return state

    def record_bytes(self) -> int:
        """The size of the record as JSON: what keeping it costs."""
        return len(json.dumps(self.describe()))


JOBS: dict[str, Job] = {}
_admitting = 0  # requests admitted whose job is not registered yet (reading the body, writing the inputs)


def active_jobs() -> int:
    """Jobs queued or running, plus requests admitted on their way to becoming one."""
    return _admitting + sum(1 for job in JOBS.values() if not job.done.is_set())


class Slot:
    """One admitted request's place among the endpoint's jobs, handed over to its job once that is registered."""

    def __init__(self) -> None:
        self.held = True

    def hand_over(self) -> None:
        """Stop counting the request (its job counts now, or it was refused); idempotent."""
        global _admitting
        if self.held:
            self.held = False
            _admitting -= 1


@contextlib.contextmanager
def admitted() -> Iterator[Slot]:
    """Hold one of the endpoint's job slots while a request is read and queued; BusyError when none is free."""
    global _admitting
    limit = route_limits().max_jobs
    if active_jobs() >= limit:
        raise BusyError(active_jobs(), limit)
    _admitting += 1
    slot = Slot()
    try:
        yield slot
    finally:
        slot.hand_over()


def inside(folder: str | Path, path: Path) -> bool:
    """True when `path` resolves to a place inside `folder`."""
    return path.resolve().is_relative_to(Path(folder).resolve())


def input_folder() -> Path:
    """input/longcat_avatar_api: where the endpoint puts the media of its jobs."""
    return Path(folder_paths.get_input_directory()) / API_SUBFOLDER


def _write_inputs(request: AvatarRequest) -> tuple[list[Path], dict[str, str]]:
    """The request's media as files in input/longcat_avatar_api/, and the names LoadImage/LoadAudio take.

    Names are the content's hash, so a repeated request reuses ComfyUI's cached results of unchanged nodes.
    """
    folder = input_folder()
    folder.mkdir(parents=True, exist_ok=True)
    media = [("image", request.image, request.image_ext)]
    if request.audio is not None and request.audio_ext is not None:
        media.append(("audio", request.audio, request.audio_ext))
    paths, names = [], {}
    for role, data, extension in media:
        digest = hashlib.sha256(data).hexdigest()[:32]  # 128 bits: no collisions between different uploads
        path = folder / f"{role}-{digest}{extension}"  # built from the hash only, never from request data
        if not inside(folder_paths.get_input_directory(), path):  # pragma: no cover - the name has no separators
            raise PayloadError(400, "refusing to write outside ComfyUI's input folder")
        path.write_bytes(data)
        paths.append(path)
        names[role] = f"{API_SUBFOLDER}/{path.name}"
    return paths, names


def build_prompt(request: AvatarRequest, names: dict[str, str], prefix: str) -> dict[str, Any]:
    """The workflow of the request's version, filled with its media and parameters."""
    template = wf.load_workflow(wf.find_workflow(request.params.version, tts=request.text is not None))
    values = wf.generation_values(request.params)
    values.update(names)
    values["filename_prefix"] = f"{API_SUBFOLDER}/{prefix}"
    if request.text is not None:
        values["speech_text"], values["voice"] = request.text, request.voice
    return wf.fill_workflow(template, values)


async def _queue(prompt: dict[str, Any], prompt_id: str) -> str:
    """POST the prompt to this server's own /prompt; returns its prompt id. Refusals become PayloadError."""
    # prompt_id: ComfyUI uses the one given (releases that ignore it make their own, which is returned).
    status, body = await post_json("/prompt", {"prompt": prompt, "prompt_id": prompt_id})
    if status == 200 and isinstance(body, dict) and "prompt_id" in body:
        return str(body["prompt_id"])
    if status != 400 or not isinstance(body, dict):
        raise PayloadError(503, f"ComfyUI's POST /prompt answered {status}: {str(body)[:500]}")
    reason = format_prompt_error(body)
    errors = body.get("node_errors") or {}
    tts_node = any(prompt.get(n, {}).get("class_type") == wf.TTS_NODE for n in errors)
    # The caller's voice is the caller's fault (422); a missing model or node is the server's (503).
    raise PayloadError(422 if tts_node else 503, f"the workflow was refused: {reason}")


async def start_job(request: AvatarRequest, slot: Slot) -> Job:
    """Write the inputs, queue the workflow and start watching it; the job takes over the request's slot."""
    forget_old_jobs()
    job_id = str(uuid.uuid4())
    paths, names = _write_inputs(request)
    job = JOBS[job_id] = Job(job_id, request.params, request.params.fps, paths)  # registered first: files in use
    slot.hand_over()  # counted once: as this job from now on
    try:
        prompt = build_prompt(request, names, job_id)
        if job.fps is None:
            job.fps = wf.read_value(prompt, "fps")
        job.nodes = class_types(prompt)
        prompt_id = await _queue(prompt, job_id)
    except BaseException:
        JOBS.pop(job_id, None)
        _remove(paths)
        raise
    if prompt_id != job_id:  # a ComfyUI release that chose its own id: the job goes by it
        job.job_id = prompt_id
        JOBS[prompt_id] = JOBS.pop(job_id)
    job.watcher = asyncio.get_running_loop().create_task(_watch(job))
    return job


def _lookup(job_id: str) -> tuple[str | None, dict[str, Any] | None]:
    """("running" / "queued" / None, the queued prompt or else its history entry): the queue is read first, so a
    prompt that ends between the two reads is found in the history (ComfyUI moves it there atomically)."""
    queue = PromptServer.instance.prompt_queue
    running, queued = queue.get_current_queue_volatile()
    for state, items in (("running", running), ("queued", queued)):
        # A queue item is (number, prompt id, prompt, extra data, outputs to execute, ...) in ComfyUI's PromptQueue.
        item = next((item for item in items if item[1] == job_id), None)
        if item is not None:
            return state, item[2]
    return None, queue.get_history(prompt_id=job_id).get(job_id)


def refresh_progress(job: Job) -> None:
    """Bring the job's progress up to date from ComfyUI's progress registry (only ever forward)."""
    if job.status == "running":
        job.progress = current_progress(job.job_id, job.nodes, job.progress)


async def _watch(job: Job) -> None:
    """Wait until the job's prompt leaves the queue, record how it ended, and remove its input files."""
    try:
        while True:
            state, entry = _lookup(job.job_id)
            if state is None:
                break
            job.status = state
            refresh_progress(job)
            await asyncio.sleep(POLL_S)
        if entry is None:  # deleted from the queue (Cancel in the queue panel, or a timed-out wait)
            job.status, job.error = "error", "the job was removed from the queue before it ran"
        else:
            _finish(job, entry)
    except Exception as error:  # a watcher must always release its waiters
        job.status, job.error = "error", f"{type(error).__name__}: {error}"
    finally:
        job.finished_at = time.monotonic()
        _remove(job.inputs, finished=job)
        job.done.set()


def failure(entry: dict[str, Any]) -> str | None:
    """Why a prompt's history entry says it did not succeed (None when it succeeded)."""
    status = entry.get("status") or {}
    if status.get("status_str") == "success":
        return None
    messages = [data for kind, data in status.get("messages", []) if kind.startswith("execution_")]
    found = next((m for m in messages if "exception_message" in m), None)
    if found is None:
        return "the generation was interrupted on the server"
    return f"the generation failed in {found.get('node_type')}: {found.get('exception_message')}"


def _finish(job: Job, entry: dict[str, Any]) -> None:
    """Fill the job's record from its history entry (or its error)."""
    error = failure(entry)
    if error is not None:
        job.status, job.error = "error", error
        return
    item = find_video(entry)
    output_root = Path(folder_paths.get_output_directory())
    path = output_root / item.get("subfolder", "") / item["filename"] if item else None
    if path is None or not inside(output_root, path) or not path.is_file():
        job.status, job.error = "error", "the workflow finished without writing an MP4"
        return
    job.status, job.filename = "success", path.relative_to(output_root).as_posix()
    job.duration_s = mp4_duration(path.read_bytes())
    job.progress = dataclasses.replace(job.progress, phase="done", steps_done=job.progress.steps_total, time_left_s=0.0)


def prompt_state(prompt_id: str) -> dict[str, Any] | None:
    """The state of a prompt this route did not start (queued through /prompt by the browser, `generate` or a
    script), without a video; None when ComfyUI knows no such prompt."""
    state, found = _lookup(prompt_id)
    if found is None:
        return None
    answer: dict[str, Any] = {"job_id": prompt_id, "status": state}
    if state is not None:
        running = state == "running"
        progress = current_progress(prompt_id, class_types(found), JobProgress()) if running else JobProgress()
        return {**answer, "progress": progress.as_json()}
    error = failure(found)
    if error is not None:
        return {**answer, "status": "error", "error": error}
    item = find_video(found)
    filename = "/".join(p for p in (item.get("subfolder", ""), item["filename"]) if p) if item else None
    return {**answer, "status": "success", "progress": JobProgress("done").as_json(), "filename": filename}


def read_video(job: Job) -> bytes | None:
    """The finished job's MP4 from output/, or None when it was deleted since."""
    path = Path(folder_paths.get_output_directory()) / (job.filename or "")
    return path.read_bytes() if job.filename and path.is_file() else None


async def cancel(job: Job) -> None:
    """Take the job's prompt out of the queue, or interrupt it when it runs (ComfyUI's own routes do it)."""
    await post_json("/queue", {"delete": [job.job_id]})
    await post_json("/interrupt", {"prompt_id": job.job_id})


def _remove(paths: list[Path], finished: Job | None = None) -> None:
    """Delete input files that no other unfinished job still reads."""
    in_use = {p for job in JOBS.values() if job is not finished and not job.done.is_set() for p in job.inputs}
    for path in paths:
        if path not in in_use:
            path.unlink(missing_ok=True)


def forget_old_jobs() -> None:
    """Drop finished records older than the time limit, then the oldest while their bytes exceed the bound."""
    limits = route_limits()
    now = time.monotonic()
    finished = [job for job in JOBS.values() if job.done.is_set() and job.finished_at is not None]
    for job in finished:
        if now - job.finished_at > limits.record_ttl_s:  # type: ignore[operator]
            JOBS.pop(job.job_id, None)
    kept = [job for job in finished if job.job_id in JOBS]
    total = sum(job.record_bytes() for job in kept)
    for job in sorted(kept, key=lambda j: j.finished_at or 0.0):
        if total <= limits.max_record_bytes:
            break
        JOBS.pop(job.job_id, None)
        total -= job.record_bytes()


def record_bytes() -> int:
    """The bytes all finished records take as JSON."""
    return sum(job.record_bytes() for job in JOBS.values() if job.done.is_set())


def remove_all_inputs() -> int:
    """Delete every file in input/longcat_avatar_api: at start-up (a killed server leaves its jobs' inputs behind,
    and no job exists yet) and at exit (the unfinished jobs end with the process)."""
    folder = input_folder()
    removed = 0
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
