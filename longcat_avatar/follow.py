"""Follow a queued prompt to its end: its /ws messages become progress events, /history gives the final entry.

The end can be learned three ways: an `execution_success` (or error) message, ComfyUI's "executing node None" marker,
or a /history entry found while polling (a quiet or dropped-message socket, or a prompt that ended before we looked).
Whichever comes first, the caller gets the entry and exactly one `done` event.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from .comfy_http import ComfyConnection
from .errors import GenerationError, ServerUnavailableError
from .progress import ProgressCallback, ProgressEvent, event_from_message, raise_for_failure

HISTORY_POLL_S = 2.0  # how often /history is read while the prompt runs (survives quiet or lossy sockets)
FINAL_HISTORY_WAIT_S = 10.0  # ComfyUI writes the history entry just after execution_success; a loaded server is slow
FINAL_HISTORY_POLL_S = 0.1  # the entry usually appears within milliseconds of the message
MIN_RECEIVE_S = 0.01  # aiohttp reads a receive timeout of 0 as "no timeout", so a due poll still waits this little
CLOSED_TYPES = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def follow_prompt(
    connection: ComfyConnection,
    ws: aiohttp.ClientWebSocketResponse,
    prompt_id: str,
    prompt: dict[str, Any],
    on_progress: ProgressCallback | None = None,
    poll_s: float = HISTORY_POLL_S,
) -> dict[str, Any]:
    """The prompt's /history entry once it succeeded (GenerationError otherwise); reports `done` exactly once."""
    entry = await _until_end(connection, ws, prompt_id, prompt, on_progress, poll_s)
    if on_progress is not None:
        on_progress(ProgressEvent("done"))
    return entry


async def _until_end(
    connection: ComfyConnection,
    ws: aiohttp.ClientWebSocketResponse,
    prompt_id: str,
    prompt: dict[str, Any],
    on_progress: ProgressCallback | None,
    poll_s: float,
) -> dict[str, Any]:
    """Read messages until one says the prompt ended, reading /history every `poll_s` seconds meanwhile."""
    next_poll = time.monotonic() + poll_s
    while True:
        data = await _receive(connection, ws, max(MIN_RECEIVE_S, next_poll - time.monotonic()))
        if data is not None and (data.get("data") or {}).get("prompt_id") in (None, prompt_id):
            raise_for_failure(data)
            if _is_end(data):
                return await _final_history(connection, prompt_id)
            event = event_from_message(data, prompt)
            if event is not None and on_progress is not None:
                on_progress(event)
        if time.monotonic() >= next_poll:
            entry = await connection.history(prompt_id)
            if entry:
                return _checked(entry, prompt_id)
            next_poll = time.monotonic() + poll_s


async def _receive(
    connection: ComfyConnection, ws: aiohttp.ClientWebSocketResponse, timeout: float
) -> dict[str, Any] | None:
    """The next JSON message, or None when none came within `timeout` (binary preview frames are skipped)."""
    try:
        message = await ws.receive(timeout=timeout)
    except asyncio.TimeoutError:
        return None
    if message.type in CLOSED_TYPES:
        raise ServerUnavailableError(connection.url, "the connection closed while the prompt ran")
    return json.loads(message.data) if message.type == aiohttp.WSMsgType.TEXT else None


def _is_end(data: dict[str, Any]) -> bool:
    """True for execution_success and for ComfyUI's end marker (`executing` with no node)."""
    if data.get("type") == "execution_success":
        return True
    payload = data.get("data") or {}
    return data.get("type") == "executing" and payload.get("node") is None and payload.get("prompt_id") is not None


async def _final_history(connection: ComfyConnection, prompt_id: str) -> dict[str, Any]:
    """The history entry once the prompt ended (ComfyUI records it a moment after its last message)."""
    deadline = time.monotonic() + FINAL_HISTORY_WAIT_S
    while time.monotonic() < deadline:
        entry = await connection.history(prompt_id)
        if entry:
            return _checked(entry, prompt_id)
        await asyncio.sleep(FINAL_HISTORY_POLL_S)
    raise GenerationError(f"prompt {prompt_id} finished but ComfyUI recorded no history for it")


def _checked(entry: dict[str, Any], prompt_id: str) -> dict[str, Any]:
    """The history entry when the prompt succeeded; raises GenerationError with the server's message otherwise."""
    status = entry.get("status", {})
    if status.get("status_str", "success") == "success":
        return entry
    for kind, data in status.get("messages", []):
        if kind in ("execution_error", "execution_interrupted"):
            raise_for_failure({"type": kind, "data": data})
    raise GenerationError(f"prompt {prompt_id} ended with status {status.get('status_str')}")
