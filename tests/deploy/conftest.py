"""The deployment tests' shared application: one local Ray cluster with two CPU replicas, each with its own ComfyUI
on the session's tiny models, started once for the tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.comfy_server import ComfyServer, find_comfyui_dir
from support.serve_cluster import ServeApp, serve_app

REPLICAS = 2  # the fewest that show spreading, and a survivor while one is replaced
MAX_JOBS = 4  # two running and two queued: a fifth job is refused


@pytest.fixture(scope="module")
def serve_cluster(
    comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[ServeApp]:
    """The Serve application on the session server's tiny models (built once, shared with the other servers), stopped
    when its module's tests end: an idle Ray cluster still takes CPU time from the tests that follow."""
    from support.avatar_graph import ensure_tiny_models  # imports torch: only when a test asks for the cluster

    ensure_tiny_models(comfy_server.models_dir)
    # Ray starts its workers (the replicas, and so their ComfyUIs) at niceness 15 unless told otherwise: next to other
    # tests on a 2-core machine they would get a few percent of a core. Studios run replicas on machines of their own.
    monkeypatch_module.setenv("RAY_worker_niceness", "0")
    work = tmp_path_factory.mktemp("serve")
    with serve_app(find_comfyui_dir(), comfy_server.models_dir, work, REPLICAS, MAX_JOBS) as app:
        yield app


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    """A MonkeyPatch undone when the module's tests end."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch
