"""HTTP and WebSocket plumbing to a ComfyUI server (aiohttp, which ComfyUI itself depends on)."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import uuid
from typing import Any

import aiohttp

from .errors import ServerRequestError, ServerUnavailableError

DEFAULT_URL = "http://127.0.0.1:8188"  # ComfyUI's default --listen address and --port
CONNECT_TIMEOUT_S = 10  # a local or LAN server answers in milliseconds; a dead host should fail fast
REQUEST_TIMEOUT_S = 600  # uploads and downloads of large media over a slow link
WS_HEARTBEAT_S = 30  # keeps the socket alive through proxies while one long sampling step runs
PACK_HINT = (
    "Is the LongCat Avatar pack in ComfyUI/custom_nodes, and did ComfyUI import it (look for 'IMPORT FAILED' in its "
    "log)? Restart ComfyUI after installing or updating the pack."
)


def server_url(url: str | None = None) -> str:
    """The server URL: the argument, else $COMFYUI_URL, else the default; `host:port` gets `http://`."""
    chosen = (url or os.environ.get("COMFYUI_URL") or DEFAULT_URL).strip().rstrip("/")
    return chosen if "://" in chosen else f"http://{chosen}"


def format_prompt_error(body: Any) -> str:
    """A readable sentence from /prompt's 400 answer ({error, node_errors})."""
    if not isinstance(body, dict):
        return str(body)[:2000]
    error = body.get("error") or {}
    parts = [error.get("message", "") if isinstance(error, dict) else str(error)]
    if isinstance(error, dict) and error.get("details"):
        parts[0] += f" ({error['details']})"
    for node_id, node in (body.get("node_errors") or {}).items():
        for item in node.get("errors", []):
            detail = item.get("details") or item.get("message", "")
            parts.append(f"node {node_id} ({node.get('class_type', '?')}): {detail}")
    text = "; ".join(p for p in parts if p)
    if "missing_node_type" in json.dumps(body) or "not found" in text and "Node '" in text:
        text += f". {PACK_HINT}"
    return text


class ComfyConnection:
    """One aiohttp session to a ComfyUI server, with the few API calls the client needs."""

    def __init__(self, url: str | None = None) -> None:
        self.url = server_url(url)
        self.client_id = uuid.uuid4().hex
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ComfyConnection:
        # No total limit (the WebSocket lives as long as a generation); connecting and each read are bounded.
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S, sock_read=REQUEST_TIMEOUT_S)
        self._session = aiohttp.ClientSession(timeout=timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session (use the connection as `async with`)."""
        if self._session is None:
            raise RuntimeError("use `async with ComfyConnection(...)`")
        return self._session

    async def request(self, method: str, route: str, **kwargs: Any) -> tuple[int, bytes]:
        """Send one request; returns (status, body). Connection failures raise ServerUnavailableError."""
        try:
            async with self.session.request(method, f"{self.url}{route}", **kwargs) as response:
                return response.status, await response.read()
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError) as error:
            raise ServerUnavailableError(self.url, _reason(error)) from error

    async def get_json(self, route: str, params: dict[str, str] | None = None) -> Any:
        """GET a JSON route; a non-2xx answer raises ServerRequestError."""
        status, body = await self.request("GET", route, params=params)
        if status >= 400:
            raise ServerRequestError(f"GET {route} answered {status}: {body[:500].decode(errors='replace')}", status)
        return json.loads(body)

    async def check(self) -> dict[str, Any]:
        """The server's /system_stats (proves it is a ComfyUI that answers)."""
        stats = await self.get_json("/system_stats")
        if not isinstance(stats, dict) or "system" not in stats:
            raise ServerRequestError(f"{self.url} answered /system_stats, but not like ComfyUI does: {stats!r:.200}")
        return stats

    async def upload(self, data: bytes, name: str, subfolder: str) -> str:
        """Put a file into the server's input folder; returns the name a LoadImage/LoadAudio node takes."""
        form = aiohttp.FormData()
        form.add_field("image", data, filename=name, content_type="application/octet-stream")
        form.add_field("subfolder", subfolder)
        form.add_field("type", "input")
        form.add_field("overwrite", "true")
        status, body = await self.request("POST", "/upload/image", data=form)
        if status >= 400:
            raise ServerRequestError(f"uploading {name} failed ({status}): {body[:500].decode(errors='replace')}")
        answer = json.loads(body)
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    async def queue(self, prompt: dict[str, Any]) -> str:
        """Queue an API-format workflow; returns its prompt id. A refused workflow raises with the node errors."""
        status, body = await self.request("POST", "/prompt", json={"prompt": prompt, "client_id": self.client_id})
        if status >= 400:
            try:
                reason = format_prompt_error(json.loads(body))
            except ValueError:
                reason = body[:2000].decode(errors="replace")
            raise ServerRequestError(f"ComfyUI refused the workflow: {reason}", status)
        return str(json.loads(body)["prompt_id"])

    async def history(self, prompt_id: str) -> dict[str, Any]:
        """The /history entry of a prompt ({} while it runs)."""
        return (await self.get_json(f"/history/{prompt_id}")).get(prompt_id, {})

    async def download(self, item: dict[str, Any]) -> bytes:
        """The bytes of one output entry ({filename, subfolder, type}) through /view."""
        params = {
            "filename": item["filename"],
            "subfolder": item.get("subfolder", ""),
            "type": item.get("type", "output"),
        }
        status, body = await self.request("GET", "/view", params=params)
        if status >= 400:
            raise ServerRequestError(f"downloading {item['filename']} failed ({status})", status)
        return body

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """Ask the server to stop the running prompt (only `prompt_id` when given)."""
        await self.request("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})

    async def websocket(self) -> aiohttp.ClientWebSocketResponse:
        """Open /ws for this client id (the server's progress messages)."""
        ws_url = self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        try:
            return await self.session.ws_connect(
                f"{ws_url}/ws?clientId={self.client_id}", heartbeat=WS_HEARTBEAT_S, max_msg_size=0
            )
        except (aiohttp.ClientConnectionError, aiohttp.WSServerHandshakeError, asyncio.TimeoutError, OSError) as error:
            raise ServerUnavailableError(self.url, _reason(error)) from error


def _reason(error: BaseException) -> str:
    """A short reason for a connection failure."""
    if isinstance(error, asyncio.TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_S}s"
    cause = getattr(error, "os_error", None) or error
    if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
        return "connection refused: nothing listens there"
    return str(error) or type(error).__name__
