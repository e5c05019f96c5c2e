"""The Modal app's request handling without Modal: validate and hand a job over (answering its id), report a job's
state, and render a job on a container's ComfyUI. deploy/modal_app.py plugs Modal's spawn and FunctionCall lookup
in; the tests plug a local executor in and run them against a real ComfyUI.

Modal answers a web request that takes longer than ~150 s with a redirect, so every job goes the job-id + poll way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from longcat_avatar.api_payload import PayloadError, parse_request

from .comfy_child import ComfyChild
from .settings import ROUTE

# spawn(body, timeout_s) -> a job id; lookup(job_id) -> ("running" | "unknown", None) or ("done", render's result)
Spawn = Callable[[dict[str, Any], float], str]
Lookup = Callable[[str], tuple[str, dict[str, Any] | None]]


def submit(body: Any, spawn: Spawn, job_timeout_s: float) -> tuple[int, dict[str, Any]]:
    """(status, JSON) of a POST: 202 with the job id and its status URL, or the pack's refusal (400, 413, 415, 422)."""
    try:
        parsed = parse_request(body)
    except PayloadError as error:
        return error.status, {"error": error.reason}
    timeout_s = min(job_timeout_s, parsed.wait_timeout_s or job_timeout_s)
    job = {key: value for key, value in body.items() if key not in ("wait", "wait_timeout_s")}
    job_id = spawn(job, timeout_s)
    return 202, {"job_id": job_id, "status_url": f"{ROUTE}/{job_id}"}


def state(job_id: str, lookup: Lookup) -> tuple[int, dict[str, Any]]:
    """(status, JSON) of a poll: running, or the job's end (the video once it succeeded), or 404."""
    where, result = lookup(job_id)
    if where == "unknown":
        return 404, {"error": "no such job (Modal keeps a job's result for a limited time)"}
    if where == "running" or result is None:
        return 200, {"job_id": job_id, "status": "running"}
    answer = dict(result["body"])
    if result["status"] != 200:
        answer.setdefault("error", f"the job ended with HTTP {result['status']}")
        answer["status"] = "error"
    return 200, {**answer, "job_id": job_id}


def render(child: ComfyChild, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """One job on the container's ComfyUI: {status, body} as that ComfyUI's own endpoint answered."""
    status, answer = child.render(body, timeout_s)
    return {"status": status, "body": answer}
