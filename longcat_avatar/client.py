"""AvatarGenerator: make a talking video through a ComfyUI server (upload, fill the workflow, queue, follow, download)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import workflow as wf
from .comfy_http import ComfyConnection
from .errors import GenerationError, InvalidParametersError
from .follow import follow_prompt
from .interruptible import run_interruptibly
from .job_status import JobStatus, follow_status, read_status
from .media import audio_extension, image_extension, mp4_duration, portrait_problem
from .media_checks import audio_problem, portrait_for_comfyui
from .params import VERSIONS, GenerationParams, validate, warnings_for
from .progress import ProgressCallback, ProgressEvent

log = logging.getLogger("longcat_avatar")

UPLOAD_SUBFOLDER = "longcat_avatar"  # inside ComfyUI's input folder, so client uploads stay together


@dataclass(frozen=True)
class GenerationResult:
    """What a finished generation produced."""

    output: Path
    prompt_id: str
    seed: int
    fps: float | None
    duration_s: float | None
    elapsed_s: float
    server_file: str  # subfolder/filename in ComfyUI's output folder


@dataclass(frozen=True)
class Inputs:
    """The media of one generation: a portrait and either an audio file or a text to speak."""

    image: Path
    audio: Path | None = None
    speech_text: str | None = None
    voice: str | None = None


def upload_name(path: Path, data: bytes, extension: str) -> str:
    """A content-addressed file name (same bytes, same name) that keeps the original stem readable."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem)[:40] or "input"  # 40: short, yet recognisable
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}{extension}"  # 12 hex digits: collisions are negligible


def read_media(path: Path, kind: str) -> tuple[bytes, str]:
    """The bytes of an input file and its real extension; InvalidParametersError naming the file and what to do
    when it cannot be used (format, a portrait's size from its header, audio that does not decode or lasts too long)."""
    if not path.is_file():
        raise InvalidParametersError([f"{kind} file {path} does not exist"])
    data = path.read_bytes()
    extension = image_extension(data) if kind == "image" else audio_extension(data)
    if extension is None:
        accepted = "PNG, JPEG, WebP, BMP" if kind == "image" else "WAV, FLAC, MP3, Ogg, M4A, WebM"
        raise InvalidParametersError([f"{kind} file {path} is not a format ComfyUI reads ({accepted})"])
    problem = portrait_problem(data) if kind == "image" else audio_problem(data)
    if problem:
        raise InvalidParametersError([f"{kind} file {path} {problem}"])
    return (portrait_for_comfyui(data) if kind == "image" else data), extension


def check_inputs(inputs: Inputs, params: GenerationParams) -> tuple[tuple[bytes, str], tuple[bytes, str] | None]:
    """The portrait and audio read and checked, and the parameters validated, before any server is asked (or
    started); InvalidParametersError lists every problem."""
    problems = validate(params)
    if inputs.audio is None and not (inputs.speech_text or "").strip():
        problems.append("give an audio file or a non-empty text to speak")
    if problems:
        raise InvalidParametersError(problems)
    image = read_media(inputs.image, "image")
    return image, read_media(inputs.audio, "audio") if inputs.audio is not None else None


def find_video(history: dict[str, Any]) -> dict[str, Any] | None:
    """The first MP4 among a prompt's outputs ({filename, subfolder, type})."""
    for node_output in history.get("outputs", {}).values():
        for items in node_output.values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and str(item.get("filename", "")).lower().endswith(".mp4"):
                    return item
    return None


class AvatarGenerator:
    """A client for a ComfyUI server running the LongCat Avatar pack."""

    def __init__(
        self,
        server_url: str | None = None,
        *,
        workflow: str | Path | dict[str, Any] | None = None,
        workflows_dir: Path = wf.WORKFLOWS_DIR,
        timeout_s: float | None = None,
    ) -> None:
        self.server_url = server_url
        self.workflow = workflow
        self.workflows_dir = workflows_dir
        self.timeout_s = timeout_s

    def generate(
        self,
        reference_image: str | Path,
        audio: str | Path,
        output: str | Path,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        fps: float | None = None,
        seed: int | None = None,
        *,
        text_guidance_scale: float | None = None,
        version: str = VERSIONS[0],
        resolution: str | None = None,
        prompt: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        """Make a talking video of `reference_image` saying `audio`, saved as MP4 at `output`."""
        params = GenerationParams(
            num_inference_steps, guidance_scale, text_guidance_scale, fps, seed, version, resolution, prompt
        )
        inputs = Inputs(Path(reference_image), audio=Path(audio))
        return run_interruptibly(self.arun(inputs, params, Path(output), on_progress))

    def speak(
        self,
        reference_image: str | Path,
        text: str,
        output: str | Path,
        voice: str = "en-us",
        params: GenerationParams | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        """Make a talking video of `reference_image` saying `text` (espeak-ng on the server)."""
        inputs = Inputs(Path(reference_image), speech_text=text, voice=voice)
        return run_interruptibly(self.arun(inputs, params or GenerationParams(), Path(output), on_progress))

    def check_server(self) -> dict[str, Any]:
        """The server's /system_stats; raises ServerUnavailableError saying how to start ComfyUI."""

        async def check() -> dict[str, Any]:
            """One /system_stats request."""
            async with ComfyConnection(self.server_url) as connection:
                return await connection.check()

        return run_interruptibly(check())

    def job_status(self, job_id: str) -> JobStatus:
        """The status and progress of a job on the server, started here or elsewhere (the HTTP route, the browser)."""

        async def read() -> JobStatus:
            """One GET of the job's status."""
            async with ComfyConnection(self.server_url) as connection:
                return await read_status(connection, job_id)

        return run_interruptibly(read())

    def follow_job(self, job_id: str, on_status: Callable[[JobStatus], None] | None = None) -> JobStatus:
        """Follow a job until it ended; `on_status` sees each new state. Returns the final one."""

        async def follow() -> JobStatus:
            """Poll the job's status to its end."""
            async with ComfyConnection(self.server_url) as connection:
                return await follow_status(connection, job_id, on_status)

        return run_interruptibly(follow())

    def load_workflow(self, version: str, tts: bool) -> dict[str, Any]:
        """The API-format workflow to fill: the one given, else the matching one from workflows/."""
        if isinstance(self.workflow, dict):
            if not wf.is_api_format(self.workflow):
                raise wf.WorkflowError("the workflow given is not in API format ({id: {class_type, inputs}})")
            return self.workflow
        path = Path(self.workflow) if self.workflow else wf.find_workflow(version, tts=tts, folder=self.workflows_dir)
        return wf.load_workflow(path)

    async def arun(
        self, inputs: Inputs, params: GenerationParams, output: Path, on_progress: ProgressCallback | None = None
    ) -> GenerationResult:
        """The asynchronous generation (for callers that already run an event loop)."""
        image, audio = check_inputs(inputs, params)
        params = params.with_seed()
        template = self.load_workflow(params.version, tts=inputs.audio is None)
        started = time.monotonic()
        async with ComfyConnection(self.server_url) as connection:
            await connection.check()
            values = await self._values(connection, inputs, image, audio, params)
            prompt = wf.fill_workflow(template, values)
            _warn_ignored(prompt, params)
            prompt_id, history = await self._execute(connection, prompt, on_progress)
            item = find_video(history)
            if item is None:
                raise GenerationError(f"prompt {prompt_id} finished without an MP4 among its outputs")
            data = await connection.download(item)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(data)
        fps = params.fps if params.fps is not None else wf.read_value(prompt, "fps")
        server_file = "/".join(p for p in (item.get("subfolder", ""), item["filename"]) if p)
        return GenerationResult(
            output, prompt_id, int(params.seed or 0), fps, mp4_duration(data), time.monotonic() - started, server_file
        )

    async def _values(
        self,
        connection: ComfyConnection,
        inputs: Inputs,
        image: tuple[bytes, str],
        audio: tuple[bytes, str] | None,
        params: GenerationParams,
    ) -> dict[str, Any]:
        """Upload the media and collect every value to set in the workflow."""
        values = wf.generation_values(params)
        values["image"] = await connection.upload(image[0], upload_name(inputs.image, *image), UPLOAD_SUBFOLDER)
        if audio is not None and inputs.audio is not None:
            values["audio"] = await connection.upload(audio[0], upload_name(inputs.audio, *audio), UPLOAD_SUBFOLDER)
        else:
            values["speech_text"], values["voice"] = inputs.speech_text, inputs.voice
        return values

    async def _execute(
        self, connection: ComfyConnection, prompt: dict[str, Any], on_progress: ProgressCallback | None
    ) -> tuple[str, dict[str, Any]]:
        """Queue the prompt, report its progress, and return its id and /history entry (raises on failure)."""
        ws = await connection.websocket()  # opened first, so no message of the prompt is missed
        prompt_id = await connection.queue(prompt)
        if on_progress is not None:
            on_progress(ProgressEvent("queued"))
        try:
            history = await asyncio.wait_for(
                follow_prompt(connection, ws, prompt_id, prompt, on_progress), self.timeout_s
            )
        except asyncio.TimeoutError as error:
            await connection.interrupt(prompt_id)
            raise GenerationError(f"prompt {prompt_id} did not finish within {self.timeout_s}s; interrupted") from error
        except asyncio.CancelledError:
            await asyncio.shield(connection.interrupt(prompt_id))  # Ctrl-C: stop the server's work too
            raise
        finally:
            await ws.close()
        return prompt_id, history


def _warn_ignored(prompt: dict[str, Any], params: GenerationParams) -> None:
    """Say when the distilled schedule will ignore the steps / guidance the caller chose."""
    chosen = [name for name in ("steps", "guidance", "text_guidance") if getattr(params, name) is not None]
    mode = wf.sampling_mode(prompt)
    if chosen and mode.distilled:
        log.warning(
            "the workflow samples in %s, so %s is not used; pass distilled='off' (--distilled off) for full sampling "
            "with your settings",
            mode.note,
            ", ".join(chosen),
        )
    for warning in warnings_for(params):
        log.warning(warning)
