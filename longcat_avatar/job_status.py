"""The status of a job on the server (GET /longcat/avatar/{job_id}): read it once, or follow it to its end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .api_payload import AVATAR_ROUTE
from .comfy_http import ComfyConnection
from .job_progress import JobProgress

FOLLOW_POLL_S = 1.0  # a generation step takes seconds: a read a second shows every step without loading the server
RUNNING_STATES = ("queued", "running")


@dataclass(frozen=True)
class JobStatus:
    """A job's state: queued, running, success or error, with its progress (and error or file once it ended)."""

    job_id: str
    status: str
    progress: JobProgress
    error: str | None = None
    filename: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobStatus:
        """Read the route's answer."""
        return cls(
            str(data["job_id"]),
            str(data["status"]),
            JobProgress.from_json(data.get("progress")),
            data.get("error"),
            data.get("filename"),
        )

    @property
    def finished(self) -> bool:
        """True once the job succeeded or failed."""
        return self.status not in RUNNING_STATES

    def describe(self) -> str:
        """One line for a terminal."""
        if self.status == "error":
            return f"{self.job_id}: error: {self.error}"
        where = f" ({self.filename} in ComfyUI's output folder)" if self.filename else ""
        return f"{self.job_id}: {self.status}, {self.progress.describe()}{where}"


async def read_status(connection: ComfyConnection, job_id: str) -> JobStatus:
    """The job's status now (without its video); ServerRequestError when the server knows no such job."""
    return JobStatus.from_json(await connection.get_json(f"{AVATAR_ROUTE}/{job_id}", params={"video": "false"}))


async def follow_status(
    connection: ComfyConnection,
    job_id: str,
    on_status: Callable[[JobStatus], None] | None = None,
    poll_s: float = FOLLOW_POLL_S,
) -> JobStatus:
    """Read the status until the job ended; `on_status` sees the first reading and every one that differs."""
    last: JobStatus | None = None
    while True:
        status = await read_status(connection, job_id)
        if status != last and on_status is not None:
            on_status(status)
        if status.finished:
            return status
        last = status
        await asyncio.sleep(poll_s)
