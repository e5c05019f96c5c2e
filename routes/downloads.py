"""/longcat/downloads: the loaders' "Download models" button, a model download in the background with progress.

`POST /longcat/downloads` {version, format, with_lora, with_multi_speaker, vocal_separator} starts the same command a
user would run, `python -m longcat_avatar download ... --json`, as a child process writing into this server's models
folder (so the queue is never blocked); `GET /longcat/downloads` answers its state {status: idle | running | done |
error | cancelled, choice, files, fetched, verified, total_bytes, done_bytes, message, target, formats};
`POST /longcat/downloads/cancel` stops it (finished files are kept, the next start continues). One download runs at a
time; nothing is downloaded unless a user asks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import folder_paths
from aiohttp import web
from server import PromptServer

from ..longcat_avatar.downloads import DIT_FORMATS, Choice, HubFile, bytes_on_disk, default_format
from ..longcat_avatar.shared import model_catalogue as catalogue

log = logging.getLogger(__name__)

ROUTE = "/longcat/downloads"
PACK_ROOT = Path(__file__).resolve().parents[1]
CANCEL_GRACE_S = 30.0  # a cancelled child that has not unwound after this long is killed
LOG_NAME = "longcat_download.log"  # the child's stderr, in ComfyUI's temp folder


@dataclass
class DownloadJob:
    """The running (or last) download."""

    choice: Choice
    longcat_dir: Path
    process: asyncio.subprocess.Process
    log_path: Path
    status: str = "running"
    files: list[HubFile] = field(default_factory=list)
    fetched: int = 0
    verified: int = 0
    message: str = ""
    cancelled: bool = False
    watcher: asyncio.Task[None] | None = None  # held so the event loop keeps the task

    def describe(self) -> dict[str, Any]:
        """The state as JSON, with the bytes on disk so far."""
        return {
            "status": self.status,
            "choice": asdict(self.choice),
            "files": len(self.files),
            "fetched": self.fetched,
            "verified": self.verified,
            "total_bytes": sum(f.size for f in self.files),
            "done_bytes": bytes_on_disk(self.files, self.longcat_dir),
            "message": self.message,
            "target": str(self.longcat_dir),
        }


CURRENT: list[DownloadJob] = []  # the last download (at most one)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _state() -> dict[str, Any]:
    state = CURRENT[0].describe() if CURRENT else {"status": "idle"}
    return state | {"formats": {version: list(formats) for version, formats in DIT_FORMATS.items()}}


def parse_choice(body: Any) -> Choice:
    """The request's choice; ValueError with the reason when it is not one."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    flags = {key: body.get(key, default) for key, default in
             (("with_lora", False), ("with_multi_speaker", False), ("vocal_separator", True))}  # fmt: skip
    wrong = [key for key, value in flags.items() if not isinstance(value, bool)]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} must be true or false")
    version = str(body.get("version", "1.5"))
    fmt = str(body.get("format") or default_format(version))
    choice = Choice(version, fmt, flags["with_lora"], flags["with_multi_speaker"], flags["vocal_separator"])
    if choice.problems():
        raise ValueError("; ".join(choice.problems()))
    return choice


async def start(request: web.Request) -> web.Response:
    """Start a download (409 while one runs)."""
    if CURRENT and CURRENT[0].status == "running":
        return _error(409, "a download is already running; cancel it or wait for it to end")
    try:
        choice = parse_choice(await request.json())
    except ValueError as error:  # also invalid JSON
        return _error(400, str(error))
    models_dir = Path(folder_paths.models_dir)
    log_path = Path(folder_paths.get_temp_directory()) / LOG_NAME
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "longcat_avatar", "download", *choice.cli_args(), "--models-dir", str(models_dir)]
    with log_path.open("wb") as stderr:  # the child keeps its own handle
        process = await asyncio.create_subprocess_exec(
            *command, "--json", cwd=PACK_ROOT, stdout=asyncio.subprocess.PIPE, stderr=stderr, **_group()
        )
    job = DownloadJob(choice, models_dir / catalogue.LONGCAT_FOLDER, process, log_path)
    job.watcher = asyncio.get_running_loop().create_task(_follow(job))
    CURRENT[:] = [job]
    log.info("LongCat Avatar: downloading %s into %s", choice, models_dir)
    return web.json_response(_state(), status=202)


def _group() -> dict[str, Any]:
    """On Windows the child gets its own process group, so CTRL_BREAK reaches it alone."""
    return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt" else {}


async def _follow(job: DownloadJob) -> None:
    """Read the child's progress events until it exits, then record how it ended."""
    assert job.process.stdout is not None
    async for line in job.process.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "plan":
            job.files = [HubFile(**f) for f in event["files"]]
        job.fetched += event.get("event") == "fetched"
        job.verified += event.get("event") == "verified"
    code = await job.process.wait()
    if job.cancelled:
        job.status, job.message = "cancelled", "cancelled: finished files are kept; start again to continue"
    elif code == 0:
        job.status = "done"
        job.message = f"{len(job.files)} files verified in {job.longcat_dir}; refresh the node definitions (R)"
    else:
        job.status, job.message = "error", _last_error(job.log_path) or f"the download exited with code {code}"


def _last_error(log_path: Path) -> str:
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else (lines[-1] if lines else "")


async def cancel(request: web.Request) -> web.Response:
    """Stop the running download: the child unwinds like Ctrl-C (killed if it has not after a grace period)."""
    if not CURRENT or CURRENT[0].status != "running":
        return _error(409, "no download is running")
    job = CURRENT[0]
    job.cancelled = True
    if job.process.returncode is None:
        job.process.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGTERM)
        asyncio.get_running_loop().call_later(CANCEL_GRACE_S, _kill, job.process)
    return web.json_response(_state(), status=202)


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()


async def status(request: web.Request) -> web.Response:
    """The running or last download's state."""
    return web.json_response(_state())


def register() -> None:
    """Add the routes to the running ComfyUI server."""
    routes = PromptServer.instance.routes
    routes.get(ROUTE)(status)
    routes.post(ROUTE)(start)
    routes.post(ROUTE + "/cancel")(cancel)
    log.info("LongCat Avatar: model downloads at %s", ROUTE)
