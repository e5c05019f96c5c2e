"""Every UI-format example workflow loads in the real ComfyUI frontend (headless Chromium): every node type is
registered in the page, nothing is reported missing, and the frontend turns it into exactly the API-format twin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from support.avatar_graph import TEST_SIZE, api_workflows, ensure_tiny_models, make_portrait, make_speech, ui_workflows
from support.comfy_server import ComfyServer
from workflows.tools.browser import open_page

pytestmark = [pytest.mark.comfy, pytest.mark.browser]

UI_ONLY_INPUTS = {"audioUI", "upload"}  # widgets the frontend adds to core loaders' prompts; the server ignores them
FRONTEND_ONLY_TYPES = {"MarkdownNote", "Note"}  # notes live in the UI only

LOAD = """
async (workflow) => {
  await window.app.loadGraphData(workflow, true, true, "test.json");
  const types = window.LiteGraph.registered_node_types;
  const nodes = window.app.graph.nodes.map((n) => ({ id: n.id, type: n.type, known: n.type in types }));
  const prompt = (await window.app.graphToPrompt()).output;
  return { nodes, prompt };
}
"""


def optional_defaults(server: ComfyServer, class_type: str) -> dict[str, Any]:
    """Default values of a node's optional widgets, from /object_info."""
    spec = server.get_json(f"/object_info/{class_type}")[class_type]["input"].get("optional", {})
    return {
        name: options[1]["default"] for name, options in spec.items() if len(options) > 1 and "default" in options[1]
    }


@pytest.fixture(scope="module")
def page(comfy_server: ComfyServer) -> Iterator[Any]:
    """One frontend page for all workflows (the frontend takes seconds to boot)."""
    with open_page(comfy_server.url) as page:
        page.wait_for_function("() => window.__longcatAvatar && window.__longcatAvatar.loaded === true")
        yield page


def test_every_workflow_has_both_formats() -> None:
    assert set(ui_workflows()) == set(api_workflows()) and len(api_workflows()) >= 4


@pytest.mark.parametrize("name", sorted(ui_workflows()))
def test_ui_workflow_loads_with_every_node_type_registered(name: str, page: Any, comfy_server: ComfyServer) -> None:
    workflow = json.loads(ui_workflows()[name].read_text())
    loaded = page.evaluate(LOAD, workflow)
    assert [n["type"] for n in loaded["nodes"]] == [n["type"] for n in workflow["nodes"]]
    unknown = [n["type"] for n in loaded["nodes"] if not n["known"]]
    assert not unknown, f"node types not registered in the frontend: {unknown}"
    assert any(n["type"].startswith("LongCatAvatar") for n in loaded["nodes"])

    api = json.loads(api_workflows()[name].read_text())
    prompt = loaded["prompt"]
    assert set(prompt) == set(api), (sorted(prompt), sorted(api))
    for node_id, node in api.items():
        assert prompt[node_id]["class_type"] == node["class_type"], node_id
        made = {k: v for k, v in prompt[node_id]["inputs"].items() if k not in UI_ONLY_INPUTS}
        for key in set(made) - set(node["inputs"]):  # an API file may leave optional widgets at their defaults
            assert made.pop(key) == optional_defaults(comfy_server, node["class_type"]).get(key, ...), key
        assert made == node["inputs"], f"node {node_id} ({node['class_type']}) differs between UI and API format"
    assert {n["type"] for n in workflow["nodes"]} - {n["class_type"] for n in api.values()} <= FRONTEND_ONLY_TYPES


RUN_FROM_PAGE = """
async ([workflow, image, audio, width, height]) => {
  await window.app.loadGraphData(workflow, true, true, "run.json");
  const set = (type, name, value) => {
    for (const node of window.app.graph.nodes.filter((n) => n.type === type)) {
      node.widgets.find((w) => w.name === name).value = value;
    }
  };
  set("LoadImage", "image", image);
  set("LoadAudio", "audio", audio);
  set("LongCatAvatarPortraitEncode", "resolution", "custom");
  set("LongCatAvatarPortraitEncode", "width", width);
  set("LongCatAvatarPortraitEncode", "height", height);
  set("LongCatAvatarVideoCombine", "filename_prefix", "ui/run");
  window.__longcatAvatar.lastInfo = undefined;
  await window.app.queuePrompt(0, 1);
}
"""


def test_a_workflow_queued_from_the_page_shows_info_and_the_video_preview(
    page: Any, comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ensure_tiny_models(comfy_server.models_dir)
    folder = tmp_path_factory.mktemp("ui-media")
    image = comfy_server.upload(make_portrait(folder / "face.png"))
    audio = comfy_server.upload(make_speech(folder / "ui.wav", "Queued from the page."))
    name = "longcat_avatar_v15_single_distilled"
    workflow = json.loads(ui_workflows()[name].read_text())
    page.evaluate(RUN_FROM_PAGE, [workflow, image, audio, *TEST_SIZE])
    page.wait_for_function("() => window.__longcatAvatar.lastInfo", timeout=600_000)
    info = page.evaluate("() => window.__longcatAvatar.lastInfo")
    sampler = next(n for n in workflow["nodes"] if n["type"] == "LongCatAvatarSampler")
    assert info["node"] == str(sampler["id"]) and "distilled mode" in info["text"]
    shown = page.evaluate(
        "(id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'longcat_info').value", sampler["id"]
    )
    assert shown == info["text"]
    combine = next(n for n in workflow["nodes"] if n["type"] == "LongCatAvatarVideoCombine")
    page.wait_for_function(
        "(id) => window.app.nodeOutputs?.[String(id)]?.images?.[0]?.filename?.endsWith('.mp4')",
        arg=combine["id"],
        timeout=600_000,
    )
    preview = page.evaluate("(id) => window.app.nodeOutputs[String(id)]", combine["id"])
    assert preview["images"][0]["subfolder"] == "ui" and preview["animated"] == [True]
    saved = page.evaluate("() => window.app.graph.serialize()")  # the report is not saved into the workflow
    node = next(n for n in saved["nodes"] if n["type"] == "LongCatAvatarSampler")
    assert info["text"] not in json.dumps(node.get("widgets_values", []))
