"""Fixtures of the graph tests: one ComfyUI server with the test-only probe node and the tiny models, shared."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.avatar_graph import ensure_tiny_models, install_probe
from support.comfy_server import ComfyServer, remove_base_dir


@pytest.fixture(scope="session")
def probe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    """A server of our own: the test-only probe node is installed before it starts (one start for every module)."""
    base = tmp_path_factory.mktemp("comfy-probe")
    install_probe(base)
    ensure_tiny_models(base / "models")
    server = ComfyServer(base).start()
    try:
        yield server
    finally:
        server.stop()
        remove_base_dir(server)
