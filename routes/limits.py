"""Limits of the HTTP endpoint under load, each adjustable by an environment variable of the ComfyUI process."""

from __future__ import annotations

import os
from dataclasses import dataclass

MAX_JOBS_ENV = "LONGCAT_AVATAR_MAX_JOBS"
MAX_RECORD_KB_ENV = "LONGCAT_AVATAR_MAX_RECORD_KB"
RECORD_TTL_ENV = "LONGCAT_AVATAR_RECORD_TTL_S"
WAIT_TIMEOUT_ENV = "LONGCAT_AVATAR_WAIT_TIMEOUT_S"

DEFAULT_MAX_JOBS = 8  # queued + running: each holds its inputs on disk; a GPU renders one at a time anyway
DEFAULT_MAX_RECORD_KB = 1024.0  # finished records are small JSON (the video stays in output/): thousands fit in 1 MiB
DEFAULT_RECORD_TTL_S = 3600.0  # an hour to fetch a finished job's result
DEFAULT_WAIT_TIMEOUT_S = 1800.0  # half an hour: longer generations should use "wait": false and poll
RETRY_AFTER_S = 30  # what a refused client is told to wait: a short generation takes tens of seconds
CANCEL_GRACE_S = 30.0  # how long a timed-out request waits for its interrupted prompt to stop and free its inputs


@dataclass(frozen=True)
class RouteLimits:
    """The bounds the endpoint enforces."""

    max_jobs: int
    max_record_bytes: int
    record_ttl_s: float
    wait_timeout_s: float


def _number(name: str, default: float) -> float:
    """A positive number from the environment, else the default."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def route_limits() -> RouteLimits:
    """The limits now (read from the environment each time, so a test server can set them at start)."""
    return RouteLimits(
        max_jobs=int(_number(MAX_JOBS_ENV, DEFAULT_MAX_JOBS)),
        max_record_bytes=int(_number(MAX_RECORD_KB_ENV, DEFAULT_MAX_RECORD_KB) * 1024),
        record_ttl_s=_number(RECORD_TTL_ENV, DEFAULT_RECORD_TTL_S),
        wait_timeout_s=_number(WAIT_TIMEOUT_ENV, DEFAULT_WAIT_TIMEOUT_S),
    )
