"""Requests from the pack to its own ComfyUI server over loopback, so ComfyUI's own handlers (POST /prompt's hooks and
numbering, /queue, /interrupt) do the work exactly as for any other client, in this release and later ones."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from comfy.cli_args import args
from server import PromptServer

LOOPBACK_TIMEOUT_S = 120  # validating a large workflow takes well under a second; a stuck server must not hang us
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # listening everywhere: use loopback


def own_url() -> str:
    """The URL this server listens on, with a wildcard address replaced by loopback."""
    server = PromptServer.instance
    host = str(getattr(server, "address", "127.0.0.1"))
    host = WILDCARD_HOSTS.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if args.tls_keyfile and args.tls_certfile else "http"
    return f"{scheme}://{host}:{server.port}"


async def post_json(route: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST a JSON body to this server; returns (status, decoded JSON or the text when it is not JSON)."""
    timeout = aiohttp.ClientTimeout(total=LOOPBACK_TIMEOUT_S)
    # ssl=False: the server's own certificate may be self-signed; the connection never leaves this machine.
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{own_url()}{route}", json=body, ssl=False) as response,
    ):
        text = await response.text()
    try:
        return response.status, json.loads(text) if text else None
    except ValueError:
        return response.status, text
