"""Shared pytest fixtures and the suite's guards (a time limit per test, minimum test counts for a whole-suite run).
The repository root and tests/ are importable (pyproject `pythonpath`)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.comfy_server import ComfyServer, remove_base_dir, start_server
from support.gated_server import start_gated_server
from support.suite_limits import MIN_TESTS_ENV, SERVER_TIMEOUT_S, UNIT_TIMEOUT_S


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    """A real ComfyUI server on 127.0.0.1 with this pack in its custom_nodes, shared by the session: the test-only
    probe nodes are installed and the tiny models written before it starts (one server start for every module)."""
    from support.avatar_graph import ensure_tiny_models, install_probe  # imports torch: only when a test asks

    base = tmp_path_factory.mktemp("comfy-base")
    install_probe(base)
    ensure_tiny_models(base / "models")
    server = start_server(base)
    try:
        yield server
    finally:
        server.stop()
        remove_base_dir(server)


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A time limit per test (pytest-timeout): the server tests' longer one, unless a test sets its own."""
    if not config.pluginmanager.hasplugin("timeout"):
        return  # a developer environment without pytest-timeout: no limits
    for item in items:
        if item.get_closest_marker("timeout") is None:
            limit = SERVER_TIMEOUT_S if item.get_closest_marker("comfy") else UNIT_TIMEOUT_S
            item.add_marker(pytest.mark.timeout(limit))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop a whole-suite run that collected fewer tests in a folder than $LONGCAT_MIN_TESTS requires."""
    wanted = os.environ.get(MIN_TESTS_ENV, "").strip()
    if not wanted:
        return
    counts = Counter(Path(item.path).relative_to(session.config.rootpath).parts[1] for item in session.items)
    problems = []
    for entry in wanted.split(","):
        folder, minimum = entry.split("=")
        if counts[folder.strip()] < int(minimum):
            problems.append(f"tests/{folder.strip()}: {counts[folder.strip()]} < {minimum}")
    if problems:
        pytest.exit(f"too few tests collected ({'; '.join(problems)}): a test file stopped being collected?", 1)
