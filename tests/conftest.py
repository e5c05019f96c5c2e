"""Shared pytest fixtures and the suite's guards (a time limit per test, minimum test counts for a whole-suite run).
The repository root and tests/ are importable (pyproject `pythonpath`)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.comfy_server import ComfyServer, remove_base_dir, start_server
from support.suite_limits import MIN_TESTS_ENV, SERVER_TIMEOUT_S, UNIT_TIMEOUT_S

# Fixtures that start the most expensive servers, most expensive first: the modules using one of them run before all
# others (see order_for_workers).
SHARED_FIXTURES = ("serve_cluster", "gated_server")
# Folders whose modules are one unit of work for parallel workers (see pytest_xdist_make_scheduler): they share a
# server that would otherwise start on every worker that takes one of them.
WORKER_UNIT_FOLDERS = ("tests/comfy/gated",)


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A time limit per test (pytest-timeout), and the order of the modules for parallel workers."""
    if config.pluginmanager.hasplugin("timeout"):  # a developer environment may lack pytest-timeout: no limits
        for item in items:
            if item.get_closest_marker("timeout") is None:
                limit = SERVER_TIMEOUT_S if item.get_closest_marker("comfy") else UNIT_TIMEOUT_S
                item.add_marker(pytest.mark.timeout(limit))
    order_for_workers(items)


def order_for_workers(items: list[pytest.Item]) -> None:
    """Put the modules with the most expensive servers first, then the other server modules, then the rest.

    With pytest-xdist's `--dist loadfile` a module is one unit of work (its module-scoped servers start once) and the
    units go out in this order: the long ones start while the other worker still has short ones to take, instead of
    one long unit running alone at the end. The modules sharing one of SHARED_FIXTURES stay next to each other. The
    order inside a module does not change.
    """
    rank = {name: index for index, name in enumerate(SHARED_FIXTURES)}
    module_rank: dict[str, tuple[int, int]] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        shared = [rank[name] for name in SHARED_FIXTURES if name in getattr(item, "fixturenames", ())]
        own = (0, min(shared)) if shared else (1 if item.get_closest_marker("comfy") else 2, 0)
        module_rank[module] = min(own, module_rank.get(module, own))
    items.sort(key=lambda item: module_rank[item.nodeid.split("::")[0]])  # stable: module order kept within a rank


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: called in the controller
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, with each of WORKER_UNIT_FOLDERS sent to one worker as a whole."""
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler
    from xdist.scheduler import LoadFileScheduling

    class LoadFileOrFolderScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            folder = module.rpartition("/")[0]
            return folder if folder in WORKER_UNIT_FOLDERS else module

    return LoadFileOrFolderScheduling(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop a whole-suite run that collected too few tests (in-process; with pytest-xdist the controller checks)."""
    if not hasattr(session.config, "workerinput"):  # an xdist worker has it: its collection is the controller's
        _require_minimum_tests(item.nodeid for item in session.items)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: called in the controller with each worker's collection
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    """Stop a whole-suite run on parallel workers that collected too few tests."""
    _require_minimum_tests(ids)


def _require_minimum_tests(nodeids: Iterable[str]) -> None:
    """Exit when fewer tests were collected in a folder than $LONGCAT_MIN_TESTS requires."""
    wanted = os.environ.get(MIN_TESTS_ENV, "").strip()
    if not wanted:
        return
    counts = Counter(Path(nodeid.split("::")[0]).parts[1] for nodeid in nodeids)  # tests/<folder>/...
    problems = []
    for entry in wanted.split(","):
        folder, minimum = entry.split("=")
        if counts[folder.strip()] < int(minimum):
            problems.append(f"tests/{folder.strip()}: {counts[folder.strip()]} < {minimum}")
    if problems:
        pytest.exit(f"too few tests collected ({'; '.join(problems)}): a test file stopped being collected?", 1)
