"""The pack's JS extension runs in the real ComfyUI frontend (headless Chromium)."""

from __future__ import annotations

import pytest

from support.comfy_server import ComfyServer
from workflows.tools.browser import open_page

pytestmark = [pytest.mark.comfy, pytest.mark.browser]


def test_frontend_runs_the_pack_extension(comfy_server: ComfyServer) -> None:
    with open_page(comfy_server.url) as page:
        page.wait_for_function("() => window.__longcatAvatar && window.__longcatAvatar.loaded === true")
        state = page.evaluate("() => window.__longcatAvatar")
        assert state["extension"] == "LongCat.Avatar"
        registered = page.evaluate(
            "() => Object.keys(window.LiteGraph?.registered_node_types ?? {}).filter(n => n.startsWith('LongCatAvatar'))"
        )
        expected = comfy_server.pack_node_ids()
        assert expected <= set(registered), sorted(expected - set(registered))
        assert set(state.get("decoratedNodes", [])) >= expected
