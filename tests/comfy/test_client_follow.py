"""The client learns of a prompt's end however it comes (a /ws message or /history) and reports `done` exactly once.

Each test forces one way deterministically on a real ComfyUI: the socket path with history polling switched off, and
the history path with a prompt that ended before the client started to follow it (no message will ever come).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from longcat_avatar.comfy_http import ComfyConnection
from longcat_avatar.errors import GenerationError
from longcat_avatar.follow import follow_prompt
from longcat_avatar.progress import ProgressEvent
from support.comfy_server import REPO_ROOT, ComfyServer

pytestmark = [pytest.mark.comfy]

NEVER_POLL_S = 24 * 3600.0  # history polling switched off: only a /ws message can end the follow
QUICK_POLL_S = 0.1  # the history path answers at the first poll


def preview_prompt(image: str, invert: bool = False) -> dict[str, Any]:
    """A core graph that runs in milliseconds: LoadImage -> (ImageInvert) -> PreviewImage."""
    prompt: dict[str, Any] = {"1": {"class_type": "LoadImage", "inputs": {"image": image}}}
    source = ["1", 0]
    if invert:
        prompt["2"] = {"class_type": "ImageInvert", "inputs": {"image": source}}
        source = ["2", 0]
    prompt["3"] = {"class_type": "PreviewImage", "inputs": {"images": source}}
    return prompt


@pytest.fixture(scope="module")
def image(comfy_server: ComfyServer) -> str:
    """The example portrait in the server's input folder."""
    return comfy_server.upload(REPO_ROOT / "examples" / "portrait.png", "follow-portrait.png")


async def _follow_live(url: str, prompt: dict[str, Any]) -> tuple[list[ProgressEvent], dict[str, Any]]:
    """Open /ws, queue, follow with history polling off."""
    events: list[ProgressEvent] = []
    async with ComfyConnection(url) as connection:
        ws = await connection.websocket()
        prompt_id = await connection.queue(prompt)
        try:
            entry = await follow_prompt(connection, ws, prompt_id, prompt, events.append, poll_s=NEVER_POLL_S)
        finally:
            await ws.close()
    return events, entry


async def _follow_finished(url: str, prompt: dict[str, Any]) -> tuple[list[ProgressEvent], dict[str, Any]]:
    """Queue, wait until /history holds the entry, and only then open /ws and follow."""
    events: list[ProgressEvent] = []
    async with ComfyConnection(url) as connection:
        prompt_id = await connection.queue(prompt)
        while not await connection.history(prompt_id):
            await asyncio.sleep(QUICK_POLL_S)
        ws = await connection.websocket()
        try:
            entry = await follow_prompt(connection, ws, prompt_id, prompt, events.append, poll_s=QUICK_POLL_S)
        finally:
            await ws.close()
    return events, entry


def test_the_socket_path_ends_with_one_done(comfy_server: ComfyServer, image: str) -> None:
    events, entry = asyncio.run(_follow_live(comfy_server.url, preview_prompt(image, invert=True)))
    kinds = [event.kind for event in events]
    assert kinds.count("done") == 1 and kinds[-1] == "done", kinds
    assert entry["status"]["status_str"] == "success"
    assert entry["outputs"]["3"]["images"]


def test_the_history_path_ends_with_one_done(comfy_server: ComfyServer, image: str) -> None:
    events, entry = asyncio.run(_follow_finished(comfy_server.url, preview_prompt(image)))
    assert [event.kind for event in events] == ["done"]  # nothing else can be learned of a prompt already ended
    assert entry["status"]["status_str"] == "success"


def test_a_failed_prompt_found_in_history_raises(comfy_server: ComfyServer, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)  # a WAV header, then garbage
    name = comfy_server.upload(broken, "follow-broken.wav")
    prompt = {"1": {"class_type": "LoadAudio", "inputs": {"audio": name}},
              "2": {"class_type": "PreviewAudio", "inputs": {"audio": ["1", 0]}}}  # fmt: skip
    with pytest.raises(GenerationError, match="LoadAudio"):
        asyncio.run(_follow_finished(comfy_server.url, prompt))
