"""aiohttp handlers of POST /longcat/avatar (a talking video from base64 media) and GET /longcat/avatar/{job_id}.

With `"wait": true` (the default) the answer is the finished video: 200 {video: base64 MP4, seed, duration_s, fps,
job_id, filename}. With `"wait": false` it is 202 {job_id, status_url}; GET the status URL until `status` is
`success` (then it carries the same fields) or `error`. Refusals are 4xx {error: reason}; a server without the model
files answers 503; a failed generation 500.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web
from server import PromptServer

from ..longcat_avatar.api_payload import PayloadError, max_payload_bytes, parse_request
from ..longcat_avatar.errors import WorkflowError
from .jobs import JOBS, start_job

log = logging.getLogger(__name__)

ROUTE = "/longcat/avatar"
CHUNK_BYTES = 1 << 20  # read the body 1 MiB at a time so the size limit holds without buffering more


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


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


async def post_avatar(request: web.Request) -> web.Response:
    """Validate, queue, and answer the video (or a job id when wait is false)."""
    try:
        raw = await read_body(request, max_payload_bytes())
        try:
            body = json.loads(raw)
        except ValueError as error:
            raise PayloadError(400, f"the body is not valid JSON: {error}") from error
        parsed = parse_request(body)
        job = await start_job(parsed)
    except PayloadError as error:
        return _error(error.status, error.reason)
    except WorkflowError as error:
        return _error(503, str(error))
    if not parsed.wait:
        return web.json_response({"job_id": job.job_id, "status_url": f"{ROUTE}/{job.job_id}"}, status=202)
    await job.done.wait()
    if job.status != "success":
        return web.json_response(job.describe(), status=500)
    return web.json_response(job.describe())


async def get_job(request: web.Request) -> web.Response:
    """The state of a job started with wait=false (the video once it succeeded)."""
    job = JOBS.get(request.match_info["job_id"])
    if job is None:
        return _error(404, "no such job (finished jobs are kept for the last 100 requests)")
    return web.json_response(job.describe())


def register() -> None:
    """Add the routes to the running ComfyUI server."""
    routes = PromptServer.instance.routes
    routes.post(ROUTE)(post_avatar)
    routes.get(ROUTE + "/{job_id}")(get_job)
    log.info("LongCat Avatar: HTTP endpoint POST %s registered", ROUTE)
