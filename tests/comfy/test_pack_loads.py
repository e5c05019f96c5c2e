"""The pack loads in a real ComfyUI: no import failure, its JS is served, its nodes are registered."""

from __future__ import annotations

import re

import pytest
import requests

from support.comfy_server import PACK_FOLDER_NAME, REPO_ROOT, ComfyServer

pytestmark = pytest.mark.comfy


def test_server_log_shows_no_import_failure(comfy_server: ComfyServer) -> None:
    log = comfy_server.log_text()
    assert "Import times for custom nodes" in log, comfy_server.log_tail()
    failed = [line for line in log.splitlines() if "IMPORT FAILED" in line or "Cannot import" in line]
    assert not failed, "\n".join(failed)
    # ComfyUI lists every custom-node folder it imported with its import time.
    assert re.search(rf"\d+\.\d+ seconds: .*{re.escape(PACK_FOLDER_NAME)}", log), comfy_server.log_tail()


def test_extension_javascript_is_served(comfy_server: ComfyServer) -> None:
    extensions = comfy_server.get_json("/extensions")
    ours = [path for path in extensions if path.endswith("/longcat_avatar.js")]
    assert ours, extensions
    script = requests.get(f"{comfy_server.url}{ours[0]}", timeout=30)
    assert script.ok and "registerExtension" in script.text


def test_every_pack_node_is_registered(comfy_server: ComfyServer) -> None:
    info = comfy_server.get_json("/object_info")
    ours = comfy_server.pack_node_ids()
    declared = _declared_node_ids()
    assert declared == ours, f"declared {sorted(declared)} vs registered {sorted(ours)}"
    for name in ours:
        assert name.startswith("LongCatAvatar"), name
        assert info[name]["category"].startswith("LongCat Avatar"), name


def _declared_node_ids() -> set[str]:
    """Node ids declared in the pack's sources (`node_id="LongCatAvatar..."`)."""
    ids: set[str] = set()
    for path in (REPO_ROOT / "nodes").rglob("*.py"):
        ids.update(re.findall(r'node_id="(LongCatAvatar\w+)"', path.read_text()))
    return ids
