"""Every UI-format example workflow loads in the real ComfyUI frontend (headless Chromium): every node type is
registered in the page, nothing is reported missing, and the frontend turns it into exactly the API-format twin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from support.avatar_graph import api_workflows, ui_workflows
from support.browser import open_page
from support.comfy_server import ComfyServer

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


@pytest.fixture(scope="module")
def page(comfy_server: ComfyServer) -> Iterator[Any]:
    """One frontend page for all workflows (the frontend takes seconds to boot)."""
    with open_page(comfy_server.url) as page:
        page.wait_for_function("() => window.__longcatAvatar && window.__longcatAvatar.loaded === true")
        yield page


def test_every_workflow_has_both_formats() -> None:
    assert set(ui_workflows()) == set(api_workflows()) and len(api_workflows()) >= 4


@pytest.mark.parametrize("name", sorted(ui_workflows()))
def test_ui_workflow_loads_with_every_node_type_registered(name: str, page: Any) -> None:
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
        assert made == node["inputs"], f"node {node_id} ({node['class_type']}) differs between UI and API format"
    assert {n["type"] for n in workflow["nodes"]} - {n["class_type"] for n in api.values()} <= FRONTEND_ONLY_TYPES
