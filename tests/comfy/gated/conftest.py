"""The gated server of the load, soak and fault tests. The modules of this folder run on one parallel worker (see
WORKER_UNIT_FOLDERS in tests/conftest.py), so the server starts once per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.comfy_server import ComfyServer, remove_base_dir
from support.gated_server import start_gated_server


@pytest.fixture(scope="session")
def gated_server(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    """A second server for the load, soak and fault tests: small endpoint limits, the Gate node, shared tiny models."""
    from support.avatar_graph import ensure_tiny_models  # imports torch: only when a test asks for this server

    ensure_tiny_models(comfy_server.models_dir)
    server = start_gated_server(tmp_path_factory.mktemp("comfy-gated"), comfy_server.models_dir)
    try:
        yield server
    finally:
        server.stop()
        remove_base_dir(server)
