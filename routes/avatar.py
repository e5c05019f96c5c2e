"""aiohttp handlers of POST /longcat/avatar (a talking video from base64 media), GET /longcat/avatar/{job_id} and
GET /longcat/avatar (the endpoint's load and limits).

With `"wait": true` (the default) the answer is the finished video: 200 {video: base64 MP4, seed, duration_s, fps,
job_id, filename}; after LONGCAT_AVATAR_WAIT_TIMEOUT_S (or the request's shorter wait_timeout_s) it is 408 and the
job is cancelled. With `"wait": false` it is 202 {job_id, status_url}; GET the status URL until `status` is
`success` (then it carries the same fields) or `error`. Every state carries `progress`: {phase (queued, encoding,
sampling, decoding, writing, done), segment, segments, steps_done, steps_total, time_left_s}; `?video=false` leaves
the video out. The id of a prompt queued elsewhere (the browser, POST /prompt) gets its status and progress too.
Refusals are 4xx {error: reason}; too many jobs at once 429 with Retry-After; a server without the model files 503;
a failed generation 500.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import json
import logging

from aiohttp import web
from server import PromptServer

from ..longcat_avatar.api_payload import AVATAR_ROUTE, AvatarRequest, PayloadError, max_payload_bytes, parse_request
from ..longcat_avatar.errors import WorkflowError
from .jobs import (
    JOBS,
    BusyError,
    Job,
    active_jobs,
    admitted,
    cancel,
    forget_old_jobs,
    prompt_state,
    read_video,
    record_bytes,
    refresh_progress,
    remove_all_inputs,
    start_job,
)
from .limits import CANCEL_GRACE_S, route_limits

log = logging.getLogger(__name__)

ROUTE = AVATAR_ROUTE
CHUNK_BYTES = 1 << 20  # read the body 1 MiB at a time so the size limit holds without buffering more


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it exceeds `limit` bytes (also when Content-Length says so)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadError(413, f"the request has {request.content_length} bytes; the limit is {limit} "
                                "(set LONGCAT_AVATAR_MAX_PAYLOAD_MB on the server to change it)")  # fmt: skip
    body = bytearray()
    while chunk := await request.content.read(CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            raise PayloadError(413, f"the request is larger than the limit of {limit} bytes "
                                    "(set LONGCAT_AVATAR_MAX_PAYLOAD_MB on the server to change it)")  # fmt: skip
    return bytes(body)


async def _admit(request: web.Request) -> tuple[Job, AvatarRequest]:
    """Read, validate and queue one request within the job bound; returns the job and the request."""
    with admitted() as slot:
        raw = await read_body(request, max_payload_bytes())
        try:
            body = json.loads(raw)
        except ValueError as error:
            raise PayloadError(400, f"the body is not valid JSON: {error}") from error
        parsed = parse_request(body)
        del raw, body  # the media now live in `parsed` only, and leave memory with it once written to input/
        return await start_job(parsed, slot), parsed


async def post_avatar(request: web.Request) -> web.Response:
    """Validate, queue, and answer the video (or a job id when wait is false)."""
    try:
        job, parsed = await _admit(request)
    except BusyError as error:
        return _error(error.status, error.reason, error.headers)
    except PayloadError as error:
        return _error(error.status, error.reason)
    except WorkflowError as error:
        return _error(503, str(error))
    if not parsed.wait:
        return web.json_response({"job_id": job.job_id, "status_url": f"{ROUTE}/{job.job_id}"}, status=202)
    limit = min(route_limits().wait_timeout_s, parsed.wait_timeout_s or float("inf"))
    del parsed  # its media are in input/ now; a long wait must not hold them in memory
    try:
        await asyncio.wait_for(asyncio.shield(job.done.wait()), limit)
    except asyncio.TimeoutError:
        return await _time_out(job, limit)
    return _answer(job)


async def _time_out(job: Job, limit: float) -> web.Response:
    """Cancel a job that outlived the wait limit; 408 once its prompt stopped (its inputs are then removed)."""
    await cancel(job)
    try:
        await asyncio.wait_for(asyncio.shield(job.done.wait()), CANCEL_GRACE_S)
    except asyncio.TimeoutError:
        log.warning("LongCat Avatar: job %s did not stop within %ss of its cancel", job.job_id, CANCEL_GRACE_S)
    job.error = f"no result within {limit:g} s (the wait limit); the job was cancelled"
    reason = (
        f'{job.error}. Use "wait": false and poll the status URL for long generations, or set '
        "LONGCAT_AVATAR_WAIT_TIMEOUT_S on the server"
    )
    return web.json_response({"job_id": job.job_id, "status": "error", "error": reason}, status=408)


def _answer(job: Job, failed_status: int = 500, video: bool = True) -> web.Response:
    """The job's record; with the video once it succeeded (410 when the file was deleted from output/)."""
    state = job.describe()
    if job.status != "success":
        return web.json_response(state, status=failed_status if job.done.is_set() else 200)
    if not video:
        return web.json_response(state)
    video = read_video(job)
    if video is None:
        return _error(410, f"the video {job.filename} is no longer in ComfyUI's output folder")
    return web.json_response({**state, "video": base64.b64encode(video).decode("ascii")})


async def get_job(request: web.Request) -> web.Response:
    """The state and progress of a job (the video once it succeeded, unless ?video=false)."""
    forget_old_jobs()
    job_id = request.match_info["job_id"]
    job = JOBS.get(job_id)
    if job is None:
        elsewhere = prompt_state(job_id)
        if elsewhere is not None:
            return web.json_response(elsewhere)
        ttl = route_limits().record_ttl_s
        return _error(404, f"no such job (finished jobs are kept for {ttl:g} s, fewer when many finish at once)")
    refresh_progress(job)
    video = request.query.get("video", "true").lower() not in ("false", "0", "no")
    return _answer(job, failed_status=200, video=video)  # the GET itself succeeded; the record says the job failed


async def get_load(request: web.Request) -> web.Response:
    """How many jobs the endpoint holds, the bytes of its finished records, and its limits."""
    forget_old_jobs()
    limits = route_limits()
    finished = sum(1 for job in JOBS.values() if job.done.is_set())
    return web.json_response(
        {
            "active_jobs": active_jobs(),
            "finished_records": finished,
            "record_bytes": record_bytes(),
            "limits": {
                "max_jobs": limits.max_jobs,
                "max_record_bytes": limits.max_record_bytes,
                "record_ttl_s": limits.record_ttl_s,
                "wait_timeout_s": limits.wait_timeout_s,
            },
        }
    )


def register() -> None:
    """Add the routes to the running ComfyUI server; clear inputs a previous (killed) server left behind."""
    removed = remove_all_inputs()
    if removed:
        log.info("LongCat Avatar: removed %d input file(s) left by an earlier run", removed)
    atexit.register(remove_all_inputs)  # a normal exit (Ctrl-C) ends the unfinished jobs: their inputs go too
    routes = PromptServer.instance.routes
    routes.post(ROUTE)(post_avatar)
    routes.get(ROUTE)(get_load)
    routes.get(ROUTE + "/{job_id}")(get_job)
    log.info("LongCat Avatar: HTTP endpoint POST %s registered", ROUTE)
