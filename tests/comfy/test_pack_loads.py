"""The pack loads in a real ComfyUI: no import failure, its JS is served, its nodes are registered."""

from __future__ import annotations

import re

import pytest
import requests

from longcat_avatar.params import GenerationParams, validate
from pipeline import limits
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


# (node, widget) -> the (min, max) pipeline/limits.py defines.
WIDGET_LIMITS = {
    ("LongCatAvatarSampler", "steps"): (limits.MIN_STEPS, limits.MAX_STEPS),
    ("LongCatAvatarSampler", "text_guidance"): (limits.MIN_GUIDANCE, limits.MAX_GUIDANCE),
    ("LongCatAvatarSampler", "audio_guidance"): (limits.MIN_GUIDANCE, limits.MAX_GUIDANCE),
    ("LongCatAvatarSampler", "seed"): (0, limits.MAX_SEED),
    ("LongCatAvatarVideoCombine", "frame_rate"): (limits.MIN_FPS, limits.MAX_FPS),
    ("LongCatAvatarPortraitEncode", "width"): (limits.MIN_SIZE, limits.MAX_SIZE),
    ("LongCatAvatarPortraitEncode", "height"): (limits.MIN_SIZE, limits.MAX_SIZE),
    ("LongCatAvatarAudioEncode", "seed"): (0, limits.MAX_NOISE_SEED),
}
# The same widgets as the command line, batch files and HTTP endpoint name them (longcat_avatar/params.py).
PARAM_FIELDS = {
    ("LongCatAvatarSampler", "steps"): "steps",
    ("LongCatAvatarSampler", "text_guidance"): "text_guidance",
    ("LongCatAvatarSampler", "audio_guidance"): "guidance",
    ("LongCatAvatarSampler", "seed"): "seed",
    ("LongCatAvatarVideoCombine", "frame_rate"): "fps",
}


@pytest.mark.parametrize(("node", "widget"), sorted(WIDGET_LIMITS))
def test_widget_ranges_are_the_shared_limits(comfy_server: ComfyServer, node: str, widget: str) -> None:
    """A node's range is the one the client validates with: the extremes pass, one step beyond is refused."""
    inputs = comfy_server.get_json(f"/object_info/{node}")[node]["input"]
    _, options = {**inputs["required"], **inputs.get("optional", {})}[widget]
    low, high = WIDGET_LIMITS[node, widget]
    assert (options["min"], options["max"]) == (low, high)
    field = PARAM_FIELDS.get((node, widget))
    if field is not None:
        assert not validate(GenerationParams(**{field: low})) and not validate(GenerationParams(**{field: high}))
        assert validate(GenerationParams(**{field: low - 1})) and validate(GenerationParams(**{field: high + 1}))
