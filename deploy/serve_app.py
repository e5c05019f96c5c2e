"""The Ray Serve application: an ingress that keeps the job records and admits within the bound, and replicas that
each own one ComfyUI (one GPU each) and render one job at a time through that ComfyUI's own POST /longcat/avatar.

    serve run deploy/serve_config.yaml                                   # the checked-in config
    serve run deploy.serve_app:build_app replicas=2 models_dir=/weights  # the same with arguments

The contract is the pack's (longcat_avatar/api_payload.py): POST /longcat/avatar answers the video (wait true) or a
job id to poll at GET /longcat/avatar/{job_id} (wait false). Answers add `replica` and `attempts`.
"""

# No `from __future__ import annotations` here: FastAPI reads the handlers' annotations (Request) at run time.
import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from longcat_avatar.api_payload import PayloadError, max_payload_bytes, parse_request

from .comfy_child import ChildLostError, ComfyChild
from .job_book import JobBook, QueueFullError
from .job_runner import run_job
from .settings import ROUTE, ServeSettings

INGRESS_MAX_ONGOING = 1000  # waiting requests and polls are cheap coroutines; the job bound is max_jobs, not this
SHUTDOWN_GRACE_S = 60.0  # a replica's ComfyUI stops within seconds of SIGTERM; the launcher kills it after 20 s

api = FastAPI(title="LongCat Avatar on Ray Serve")


# Defined before the ingress: Serve pickles the ingress class with the module globals that exist at that point.
async def _read_json(request: Request) -> Any:
    """The body as JSON, within the pack's payload limit (413) and valid (400)."""
    limit = max_payload_bytes()
    raw = await request.body()
    if len(raw) > limit:
        raise PayloadError(413, f"the request has {len(raw)} bytes; the limit is {limit}")
    try:
        return json.loads(raw)
    except ValueError as error:
        raise PayloadError(400, f"the body is not valid JSON: {error}") from error


@serve.deployment(max_ongoing_requests=1, graceful_shutdown_timeout_s=SHUTDOWN_GRACE_S)
class AvatarReplica:
    """One ComfyUI (on one GPU): started and warmed up at start, health-checked, one job at a time."""

    def __init__(self, args: dict[str, Any]) -> None:
        """Start this replica's ComfyUI and warm it up; Serve marks the replica ready when this returns."""
        settings = ServeSettings.from_args(args)
        self.name = serve.get_replica_context().replica_id.unique_id
        self.child = ComfyChild(settings, self.name).start()

    async def check_health(self) -> None:
        """Serve's health check: raising makes Serve replace this replica (a dead or hung ComfyUI)."""
        problem = await asyncio.to_thread(self.child.problem)
        if problem is not None:
            raise RuntimeError(problem)

    async def run(self, job_id: str, body: dict[str, Any], timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        """Events of one job: `refused` (this ComfyUI is down: not started) or `started`, then `done` or `lost`."""
        problem = await asyncio.to_thread(self.child.problem)
        if problem is not None:
            yield {"event": "refused", "reason": problem}
            return
        yield {"event": "started", "replica": self.name, "job_id": job_id}
        try:
            status, answer = await asyncio.to_thread(self.child.render, body, timeout_s)
        except ChildLostError as error:
            yield {"event": "lost", "reason": str(error)}
            return
        except requests.RequestException as error:
            status, answer = 502, {"error": f"ComfyUI of replica {self.name} did not answer: {error}"}
        except asyncio.CancelledError:  # the caller gave up: stop the prompt so the GPU is free for the next job
            await asyncio.to_thread(self.child.interrupt)
            raise
        yield {"event": "done", "status": status, "body": answer}

    def __del__(self) -> None:
        """Serve stops the replica: stop its ComfyUI with it."""
        child = getattr(self, "child", None)
        if child is not None:
            child.stop()


@serve.deployment(num_replicas=1, max_ongoing_requests=INGRESS_MAX_ONGOING)
@serve.ingress(api)
class AvatarIngress:
    """The HTTP contract of POST /longcat/avatar, the job records, and the retry of jobs lost with their replica."""

    def __init__(self, replicas: DeploymentHandle, args: dict[str, Any]) -> None:
        """`replicas`: the AvatarReplica deployment."""
        self.settings = ServeSettings.from_args(args)
        self.replicas = replicas.options(stream=True)
        self.book = JobBook(self.settings)

    @api.post(ROUTE)
    async def post_avatar(self, request: Request) -> JSONResponse:
        """Validate (the pack's parse_request), admit within max_jobs, then answer the video or the job id."""
        try:
            body = await _read_json(request)
            parsed = await asyncio.to_thread(parse_request, body)  # decodes and probes the media: off the event loop
            job = self.book.admit()
        except PayloadError as error:
            return JSONResponse({"error": error.reason}, status_code=error.status)
        except QueueFullError as error:
            headers = {"Retry-After": str(self.settings.retry_after_s)}
            return JSONResponse({"error": str(error)}, status_code=503, headers=headers)
        timeout_s = min(self.settings.job_timeout_s, parsed.wait_timeout_s or self.settings.job_timeout_s)
        body = {key: value for key, value in body.items() if key not in ("wait", "wait_timeout_s")}
        job.driver = asyncio.get_running_loop().create_task(run_job(self.replicas, self.settings, job, body, timeout_s))
        if not parsed.wait:
            return JSONResponse({"job_id": job.job_id, "status_url": f"{ROUTE}/{job.job_id}"}, status_code=202)
        del parsed  # the media travel in `body` only
        await asyncio.shield(job.done.wait())  # a client that hangs up does not cancel the job
        return JSONResponse(await job.full_answer(), status_code=job.http_status or 500)

    @api.get(ROUTE + "/{job_id}")
    async def get_job(self, job_id: str) -> JSONResponse:
        """A job's state (the video once it succeeded); 404 when unknown or expired."""
        job = self.book.get(job_id)
        if job is None:
            ttl = self.settings.record_ttl_s
            return JSONResponse({"error": f"no such job (finished jobs are kept for {ttl:g} s)"}, status_code=404)
        return JSONResponse(await job.full_answer())

    @api.get(ROUTE)
    async def get_load(self) -> JSONResponse:
        """How many jobs the deployment holds, and its bounds."""
        return JSONResponse(self.book.load())


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The application from its arguments (see deploy/settings.py ServeSettings): replicas, GPUs, health period."""
    settings = ServeSettings.from_args(args)
    plain = settings.as_args()
    replica = AvatarReplica.options(
        num_replicas=settings.replicas,
        ray_actor_options={"num_gpus": settings.gpus_per_replica},
        health_check_period_s=settings.health_period_s,
    )
    return AvatarIngress.bind(replica.bind(plain), plain)


app = build_app()  # the default application: `serve build deploy.serve_app:app` writes deploy/serve_config.yaml
