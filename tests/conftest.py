"""Shared pytest fixtures. The repository root and tests/ are importable (pyproject `pythonpath`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.comfy_server import ComfyServer, remove_base_dir, start_server


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    """A real ComfyUI server on 127.0.0.1 with this pack in its custom_nodes, shared by the session."""
    server = start_server(tmp_path_factory.mktemp("comfy-base"))
    try:
        yield server
    finally:
        server.stop()
        remove_base_dir(server)
