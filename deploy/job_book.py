"""The deployment's job records, kept by the ingress (outside the replicas, so a poll still answers after the replica
that rendered a job died): admission within the bound, each job's state, attempts and replica, and its answer.

A finished answer (with its base64 video) is put into Ray's object store, so the ingress holds only small records;
records expire after the settings' record_ttl_s.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import ray

from .settings import ServeSettings

FINISHED = ("success", "error")


class QueueFullError(RuntimeError):
    """As many jobs as the deployment may hold are queued or running: 503 with Retry-After."""


@dataclass
class JobRecord:
    """One job: its state, where it ran, and once it ended its HTTP status and answer."""

    job_id: str
    status: str = "queued"  # queued (waiting for a replica), running, success or error
    replica: str | None = None
    attempts: int = 0  # how many replicas started it (2 when the first died mid-job)
    http_status: int | None = None
    error: str | None = None
    answer: ray.ObjectRef | None = None  # the replica's answer with the video, once it succeeded
    finished_at: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    driver: asyncio.Task[None] | None = None  # held here so the event loop does not drop the running task

    def describe(self) -> dict[str, Any]:
        """The job's state as JSON, without the video."""
        state: dict[str, Any] = {"job_id": self.job_id, "status": self.status, "attempts": self.attempts}
        if self.replica is not None:
            state["replica"] = self.replica
        if self.error is not None:
            state["error"] = self.error
        return state

    def finish(self, http_status: int, answer: dict[str, Any]) -> None:
        """Record how the job ended: the replica's answer (the video in the object store) or the error."""
        self.http_status = http_status
        if http_status == 200 and answer.get("video"):
            self.status, self.answer = "success", ray.put(answer)
        else:
            self.status, self.error = "error", str(answer.get("error") or f"the replica answered {http_status}")
        self.finished_at = time.monotonic()
        self.done.set()

    async def full_answer(self) -> dict[str, Any]:
        """The state, with the replica's answer (video, seed, duration, fps) once the job succeeded."""
        if self.answer is None:
            return self.describe()
        answer: dict[str, Any] = await self.answer
        return {**answer, **self.describe()}


class JobBook:
    """The ingress's records: admits jobs within max_jobs and forgets finished ones after record_ttl_s."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.jobs: dict[str, JobRecord] = {}

    def active(self) -> int:
        """Jobs queued or running."""
        return sum(1 for job in self.jobs.values() if not job.done.is_set())

    def admit(self) -> JobRecord:
        """A new job record; QueueFullError when max_jobs are already queued or running."""
        self.forget_old()
        if self.active() >= self.settings.max_jobs:
            raise QueueFullError(
                f"the deployment already holds {self.active()} jobs (its limit is {self.settings.max_jobs}); retry "
                f"in {self.settings.retry_after_s} s (raise max_jobs or add replicas to hold more)"
            )
        job = JobRecord(job_id=str(uuid.uuid4()))
        self.jobs[job.job_id] = job
        return job

    def get(self, job_id: str) -> JobRecord | None:
        """A job's record, None when unknown or expired."""
        self.forget_old()
        return self.jobs.get(job_id)

    def forget_old(self) -> None:
        """Drop records that finished more than record_ttl_s ago (their answers leave the object store with them)."""
        now = time.monotonic()
        for job in list(self.jobs.values()):
            if job.finished_at is not None and now - job.finished_at > self.settings.record_ttl_s:
                del self.jobs[job.job_id]

    def load(self) -> dict[str, Any]:
        """How many jobs are held, and the bounds."""
        self.forget_old()
        settings = self.settings
        return {
            "active_jobs": self.active(),
            "finished_records": sum(1 for job in self.jobs.values() if job.done.is_set()),
            "limits": {
                "max_jobs": settings.max_jobs,
                "job_timeout_s": settings.job_timeout_s,
                "record_ttl_s": settings.record_ttl_s,
                "replicas": settings.replicas,
            },  # fmt: skip
        }
