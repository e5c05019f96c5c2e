"""LongCat Avatar automation: a Python client, a command line and batch files on top of a ComfyUI server.

Nothing here imports ComfyUI: the client talks to a running server over its HTTP and WebSocket API.
"""

from __future__ import annotations

from .client import AvatarGenerator, GenerationResult
from .errors import (
    AvatarError,
    GenerationError,
    InvalidParametersError,
    ServerRequestError,
    ServerUnavailableError,
    WorkflowError,
)
from .params import GenerationParams

__all__ = [
    "AvatarError",
    "AvatarGenerator",
    "GenerationError",
    "GenerationParams",
    "GenerationResult",
    "InvalidParametersError",
    "ServerRequestError",
    "ServerUnavailableError",
    "WorkflowError",
]
