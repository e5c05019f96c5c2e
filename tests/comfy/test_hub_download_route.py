"""The loaders' model downloads on a real ComfyUI server, against a local HTTP server standing in for the Hugging Face
hub (no hub is reachable offline; see support/fake_hub.py): `/longcat/downloads` runs a download in the background
with progress, cancels it mid-transfer, finishes it on the next start, refuses bad requests; the loaders' button
(headless Chromium) starts one and sees it end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from longcat_avatar.downloads import HubFile, bytes_on_disk
from support.comfy_server import ComfyServer, remove_base_dir
from support.fake_hub import FakeHub
from support.longcat_hub import BIG_SHARD, V10_DEFAULT, V15, V15_INT8_WITH_LORA, longcat_repos
from workflows.tools.browser import open_page

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

ROUTE = "/longcat/downloads"
WAIT_S = 300  # generous: downloads of a few MB, but the CI machine may be busy
V15_INT8 = {repo: files - {"lora/dmd_lora.safetensors"} for repo, files in V15_INT8_WITH_LORA.items()}


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    """The stand-in hub with the three miniature repositories."""
    with FakeHub(longcat_repos()) as hub:
        yield hub


@pytest.fixture(scope="module")
def server(hub: FakeHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    """A server whose huggingface_hub talks to the stand-in (HF_ENDPOINT) and may go online."""
    base = tmp_path_factory.mktemp("comfy-downloads")
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(base / "hf-home")}
    server = ComfyServer(base, env=env).start()
    try:
        yield server
    finally:
        server.stop()
        remove_base_dir(server)


def post(server: ComfyServer, path: str = "", body: Any = None) -> requests.Response:
    """POST to the download route."""
    return requests.post(f"{server.url}{ROUTE}{path}", json=body, timeout=30)


def wait_for(server: ComfyServer, done: Any) -> dict[str, Any]:
    """Poll the state until `done(state)` holds (or fail after WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        state = server.get_json(ROUTE)
        if done(state):
            return state
        assert time.monotonic() < deadline, f"gave up waiting; last state {state}\n{server.log_tail()}"
        time.sleep(0.2)


def files_in(longcat: Path, repos: dict[str, set[str]]) -> dict[str, set[str]]:
    """The files of these repositories on disk, without huggingface_hub's .cache."""
    found = {}
    for repo_id in repos:
        folder = longcat / repo_id.split("/")[1]
        files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        found[repo_id] = {f for f in files if not f.startswith(".cache/")}
    return found


def test_hub_download_route_progress_cancel_and_restart(server: ComfyServer, hub: FakeHub) -> None:
    longcat = server.models_dir / "longcat"
    assert server.pack_node_ids() and server.get_json(ROUTE)["status"] == "idle"
    assert hub.requests == []  # nothing is downloaded unless asked: the pack loaded and listed its nodes offline
    hub.hold[(V15, BIG_SHARD)] = released = threading.Event()
    started = post(server, body={"version": "1.5"})
    assert started.status_code == 202 and started.json()["status"] == "running", started.text
    assert post(server, body={"version": "1.0"}).status_code == 409  # one download at a time

    # The held shard is partly on disk: progress counts it, the download still runs.
    running = wait_for(server, lambda s: s["status"] != "running" or s["done_bytes"] > 0 and s["fetched"] > 0)
    assert running["status"] == "running" and 0 < running["done_bytes"] < running["total_bytes"]
    assert running["choice"] == {"version": "1.5", "fmt": "int8", "with_lora": False, "with_multi_speaker": False,
                                 "with_separator": True}  # fmt: skip
    assert post(server, "/cancel").status_code == 202
    cancelled = wait_for(server, lambda s: s["status"] != "running")
    assert cancelled["status"] == "cancelled", cancelled
    meta = hub.metadata(hub.by_id[V15], BIG_SHARD)
    shard = HubFile("LongCat-Video-Avatar-1.5", BIG_SHARD, meta["size"], meta["sha256"], meta["blob_id"])
    assert bytes_on_disk([shard], longcat) == 0  # the child unwound: no shard, no partial file left behind

    released.set()
    del hub.hold[(V15, BIG_SHARD)]
    assert post(server, body={"version": "1.5", "format": "int8"}).status_code == 202
    done = wait_for(server, lambda s: s["status"] != "running")
    assert done["status"] == "done", done
    assert done["done_bytes"] == done["total_bytes"] > 0 and done["verified"] == done["files"] > 0
    assert files_in(longcat, V15_INT8) == V15_INT8


def test_hub_download_route_refuses_bad_requests(server: ComfyServer) -> None:
    refused = post(server, body={"version": "1.0", "format": "int8"})
    assert refused.status_code == 400 and "v1.0 ships the DiT as bf16" in refused.json()["error"]
    refused = post(server, body={"version": "1.5", "with_lora": "yes"})
    assert refused.status_code == 400 and "with_lora must be true or false" in refused.json()["error"]
    assert post(server, "/cancel").status_code == 409


@pytest.mark.browser
def test_hub_download_button_on_the_loaders(server: ComfyServer) -> None:
    with open_page(server.url) as page:
        page.wait_for_function("() => window.__longcatAvatar && window.__longcatAvatar.loaded === true")
        buttons = page.evaluate(
            """() => Object.keys(LiteGraph.registered_node_types).filter((t) => t.startsWith("LongCatAvatar"))
                 .filter((t) => LiteGraph.createNode(t).widgets?.some((w) => w.name === "download models"))"""
        )
        assert set(buttons) == {n for n in server.pack_node_ids() if n.endswith("Loader")}
        page.evaluate(
            """() => { const node = LiteGraph.createNode("LongCatAvatarVAELoader"); app.graph.add(node);
                       node.widgets.find((w) => w.name === "download models").callback(); }"""
        )
        page.wait_for_selector("#longcat-avatar-downloads select[name=version]")
        page.select_option("#longcat-avatar-downloads select[name=version]", "1.0")
        page.click("#longcat-avatar-downloads button[name=start]")
        page.wait_for_function(  # this download's end: the panel first shows the previous test's finished v1.5 one
            """() => { const last = window.__longcatAvatarDownloads?.last;
                       return ['done', 'error'].includes(last?.status) && last?.choice?.version === '1.0'; }""",
            timeout=WAIT_S * 1000,
        )
        state = page.evaluate("() => window.__longcatAvatarDownloads.last")
        text = page.inner_text("#longcat-avatar-downloads .status")
    assert state["status"] == "done" and state["choice"]["version"] == "1.0", state
    assert text.startswith("done:") and f"{state['files']}/{state['files']} files verified" in text
    assert files_in(server.models_dir / "longcat", V10_DEFAULT) == V10_DEFAULT
