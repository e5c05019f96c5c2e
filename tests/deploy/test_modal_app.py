"""The Modal app (deploy/modal_app.py), offline: it imports and registers its GPU class, the web endpoint and the
download function, asks for a GPU with room for the model, and mounts the weights' Volume where the containers'
ComfyUI reads its models. Its request handling (deploy/modal_jobs.py) runs against a real local ComfyUI (tiny models)
with a local executor in place of Modal's spawn. Nothing here contacts Modal (`modal deploy` is never called).
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deploy.comfy_child import ComfyChild
from deploy.modal_jobs import render
from deploy.settings import ROUTE, ServeSettings
from support.avatar_requests import JOB_WAIT_S, POLL_S, job_body
from support.comfy_server import ComfyServer, find_comfyui_dir

with warnings.catch_warnings():  # modal 1.6 deprecates the registered_* accessors it still provides (removed in 1.7)
    warnings.simplefilter("ignore", DeprecationWarning)
    from deploy import modal_app


GB = 1e9  # the estimator's and Modal's gigabytes


def _estimated_peak_bytes(weight_format: str, resolution: str) -> int:
    """The estimator's device peak of 10 s of v1.5 video (distilled, one speaker): what a GPU must hold."""
    from pipeline.memory.estimate import VideoShape, shipped_configs
    from pipeline.memory.plan import plan_memory
    from pipeline.resolution import resolve_size

    configs = shipped_configs("v1.5")
    height, width = resolve_size(resolution)
    return plan_memory(configs, VideoShape(height, width, configs.text_tokens), weight_format).peak


def _registered(kind: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(modal_app.app, f"registered_{kind}")


def test_the_app_registers_its_gpu_class_endpoint_and_download() -> None:
    assert set(_registered("classes")) == {"AvatarGPU"}
    assert set(_registered("functions")) == {"AvatarGPU.*", "web", "download_weights"}
    assert _registered("web_endpoints") == ["web"]


def test_the_gpu_class_names_a_gpu_with_room_and_mounts_the_weights_where_comfyui_reads_them() -> None:
    spec = _registered("functions")["AvatarGPU.*"]._spec_
    assert modal_app.GPU_MEMORY_GB[spec.gpus] * GB >= _estimated_peak_bytes("bf16", "480p")
    assert set(spec.volumes) == {modal_app.MODELS_DIR} == {modal_app.SETTINGS.models_dir}
    download = _registered("functions")["download_weights"]._spec_
    assert set(download.volumes) == {modal_app.MODELS_DIR}


class LocalJobs:
    """Modal's spawn and FunctionCall lookup, played by a thread pool on a local ComfyUI."""

    def __init__(self, child: ComfyChild) -> None:
        self.child, self.pool, self.calls = child, ThreadPoolExecutor(max_workers=1), {}

    def spawn(self, body: dict[str, Any], timeout_s: float) -> str:
        job_id = f"fc-{uuid.uuid4().hex}"
        self.calls[job_id] = self.pool.submit(render, self.child, body, timeout_s)
        return job_id

    def lookup(self, job_id: str) -> tuple[str, dict[str, Any] | None]:
        call: Future[dict[str, Any]] | None = self.calls.get(job_id)
        if call is None:
            return "unknown", None
        return ("done", call.result()) if call.done() else ("running", None)


@pytest.fixture(scope="module")
def modal_client(comfy_server: ComfyServer) -> Iterator[TestClient]:
    """The endpoint's FastAPI app on a local ComfyUI started as a container would start it (no warm-up: tiny models)."""
    from support.avatar_graph import ensure_tiny_models  # imports torch: only when a test asks for this client

    ensure_tiny_models(comfy_server.models_dir)
    settings = ServeSettings(comfyui_dir=str(find_comfyui_dir()), models_dir=str(comfy_server.models_dir),
                             gpus_per_replica=0, warmup=False)  # fmt: skip
    child = ComfyChild(settings, "modal-test").start()
    jobs = LocalJobs(child)
    try:
        yield TestClient(modal_app.make_web_app(jobs.spawn, jobs.lookup))
    finally:
        jobs.pool.shutdown(wait=True)
        child.stop()


@pytest.mark.comfy
def test_the_endpoint_answers_a_job_id_and_the_poll_gives_the_video(modal_client: TestClient) -> None:
    accepted = modal_client.post(ROUTE, json=job_body(400))
    assert accepted.status_code == 202, accepted.text
    status_url = accepted.json()["status_url"]
    deadline = time.monotonic() + JOB_WAIT_S
    while (record := modal_client.get(status_url).json())["status"] == "running":
        assert time.monotonic() < deadline, f"the job did not end within {JOB_WAIT_S} s"
        time.sleep(POLL_S)
    assert record["status"] == "success" and record["video"], record
    assert record["job_id"] == accepted.json()["job_id"]


@pytest.mark.comfy
def test_the_endpoint_refuses_bad_requests_and_unknown_jobs_like_the_pack(modal_client: TestClient) -> None:
    assert modal_client.post(ROUTE, json=job_body(401, reference_image="not base64!")).status_code == 400
    assert modal_client.post(ROUTE, json=job_body(402, resolution="huge")).status_code == 422
    assert modal_client.get(f"{ROUTE}/fc-unknown").status_code == 404
