"""Drive one job through the replicas (in the ingress): hand it to Serve, follow its events, and handle the faults.

- A replica whose ComfyUI is already down refuses the job before starting it: the job is handed to Serve again
  (Serve replaces that replica) until a healthy replica starts it, within requeue_wait_s.
- A job whose replica (or its ComfyUI) dies mid-render is lost: it runs once more (LOST_JOB_RETRIES) on the replica
  Serve picks, under the same job id and record, and is reported failed after that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from .job_book import JobRecord
from .settings import LOST_JOB_RETRIES, ServeSettings

log = logging.getLogger(__name__)

REQUEUE_PAUSE_S = 1.0  # between hand-overs of a refused job: Serve needs a health-check period to drop the replica
LOST_STATUS = 500  # the job failed on the server's side: the same status the pack's endpoint gives a failed run
NO_REPLICA_STATUS = 503  # no healthy replica took the job in time


async def run_job(
    replicas: DeploymentHandle, settings: ServeSettings, job: JobRecord, body: dict[str, Any], timeout_s: float
) -> None:
    """Run the job to its end and record it; never raises (the record always ends, success or error)."""
    try:
        await _run(replicas, settings, job, body, timeout_s)
    except Exception as error:  # the record must end whatever happened, or a poller would wait forever
        log.exception("LongCat Avatar: job %s failed in the ingress", job.job_id)
        job.finish(LOST_STATUS, {"error": f"{type(error).__name__}: {error}"})


async def _run(
    replicas: DeploymentHandle, settings: ServeSettings, job: JobRecord, body: dict[str, Any], timeout_s: float
) -> None:
    lost: list[str] = []
    requeue_until = time.monotonic() + settings.requeue_wait_s
    while True:
        event = await _attempt(replicas, job, body, timeout_s)
        if event["event"] == "done":
            job.finish(event["status"], {**event["body"], "job_id": job.job_id})
            return
        if event["event"] == "lost":
            lost.append(event["reason"])
            log.warning("LongCat Avatar: job %s lost on replica %s: %s", job.job_id, job.replica, event["reason"])
            if len(lost) > LOST_JOB_RETRIES:
                reasons = " | ".join(lost)
                job.finish(LOST_STATUS, {"error": f"the job was lost with its replica {len(lost)} times: {reasons}"})
                return
        elif time.monotonic() > requeue_until:  # refused: no healthy replica started it
            reason = f"no healthy replica took the job within {settings.requeue_wait_s:g} s: {event['reason']}"
            job.finish(NO_REPLICA_STATUS, {"error": reason})
            return
        else:
            await asyncio.sleep(REQUEUE_PAUSE_S)
        job.status = "queued"


async def _attempt(replicas: DeploymentHandle, job: JobRecord, body: dict[str, Any], timeout_s: float) -> dict:
    """One hand-over to Serve: the job's last event (`done`, `lost` or `refused`)."""
    started = False
    try:
        async for event in replicas.run.remote(job.job_id, body, timeout_s):
            if event["event"] != "started":
                return event
            started = True
            job.status, job.replica, job.attempts = "running", event["replica"], job.attempts + 1
    except (RayActorError, BackPressureError) as error:  # the replica process died, or Serve's queue refused
        kind = "lost" if started else "refused"
        return {"event": kind, "reason": f"{type(error).__name__}: {error}"}
    return {"event": "lost" if started else "refused", "reason": "the replica ended the job without an answer"}
