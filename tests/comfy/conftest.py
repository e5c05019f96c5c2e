"""Fixtures of the graph tests."""

from __future__ import annotations

import pytest

from support.comfy_server import ComfyServer


@pytest.fixture(scope="session")
def probe_server(comfy_server: ComfyServer) -> ComfyServer:
    """The session's server: it has the test-only probe nodes and the tiny models (tests/conftest.py)."""
    return comfy_server
