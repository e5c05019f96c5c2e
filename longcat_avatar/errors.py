"""The client's errors: each message says what went wrong and what to do."""

from __future__ import annotations

START_HINT = (
    "Start ComfyUI first: in your ComfyUI folder run `python main.py` (it listens on http://127.0.0.1:8188; add "
    "`--listen 0.0.0.0 --port 8188` to reach it from other machines, `--cpu` without a GPU), wait for "
    "'To see the GUI go to', then retry. Point the client elsewhere with --server URL or COMFYUI_URL."
)


class AvatarError(RuntimeError):
    """Base class of every error the client raises."""


class ServerUnavailableError(AvatarError):
    """No ComfyUI answers at the URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Could not reach ComfyUI at {url} ({reason}). {START_HINT}")
        self.url = url


class InvalidParametersError(AvatarError):
    """One or more generation parameters are out of range or missing."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Invalid parameters: " + "; ".join(problems))
        self.problems = problems


class WorkflowError(AvatarError):
    """The API-format workflow is missing, malformed, or lacks a node the client must fill."""


class ServerRequestError(AvatarError):
    """ComfyUI refused a request (for example /prompt rejected the workflow)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GenerationError(AvatarError):
    """The workflow ran and failed, was interrupted, or produced no video."""
