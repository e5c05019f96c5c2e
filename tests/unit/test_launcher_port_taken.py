"""A port the launcher found free can be taken by another program before ComfyUI binds it: the launcher then starts
ComfyUI again on another port; a port the caller chose is kept, and the failure says why.

ComfyUI is stood in for by a small main.py that does what ComfyUI does at these two points (seen in a real ComfyUI
0.3.75 log): it binds --port with asyncio's create_server, whose error names the address, and exits when that fails;
once listening it answers /system_stats with its argv. A real ComfyUI start takes ~15 s; this one a fraction of it.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from longcat_avatar import comfy_launcher
from longcat_avatar.comfy_launcher import PORT_TAKEN, ComfyLauncher, ComfyLaunchError

STAND_IN = """
import asyncio, json, sys

PORT = int(sys.argv[sys.argv.index("--port") + 1])


async def answer(reader, writer):
    await reader.readuntil(b"\\r\\n\\r\\n")
    body = json.dumps({"system": {"argv": sys.argv}}).encode()
    head = f"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: {len(body)}\\r\\n"
    writer.write(head.encode() + b"Connection: close\\r\\n\\r\\n" + body)
    await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(answer, "127.0.0.1", PORT)
    async with server:
        await server.serve_forever()


asyncio.run(main())
"""


@pytest.fixture
def comfyui(tmp_path: Path) -> Path:
    """A folder whose main.py is the stand-in."""
    folder = tmp_path / "ComfyUI"
    folder.mkdir()
    (folder / "main.py").write_text(STAND_IN)
    return folder


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_a_port_taken_before_comfyui_binds_it_is_replaced(
    comfyui: Path, taken_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = iter([taken_port])  # what free_port saw first: free then, taken by the time ComfyUI binds it
    real_free_port = comfy_launcher.free_port
    monkeypatch.setattr(comfy_launcher, "free_port", lambda host="127.0.0.1": next(found, None) or real_free_port(host))
    launcher = ComfyLauncher(comfyui, python=sys.executable, log_file=tmp_path / "comfy.log")
    assert launcher.port == taken_port
    with launcher:
        assert launcher.running and launcher.port != taken_port and launcher._answers()
        assert str(launcher.port) in launcher.url
    assert not launcher.running and not launcher.base_dir.exists()


def test_a_port_the_caller_chose_is_kept_and_the_error_says_it_is_taken(
    comfyui: Path, taken_port: int, tmp_path: Path
) -> None:
    launcher = ComfyLauncher(comfyui, port=taken_port, log_file=tmp_path / "comfy.log")
    with pytest.raises(ComfyLaunchError, match="exited with code 1 while starting") as failed:
        launcher.start()
    assert PORT_TAKEN in str(failed.value) and f"'127.0.0.1', {taken_port}" in str(failed.value)
    assert launcher.port == taken_port and not launcher.running and not launcher.base_dir.exists()
