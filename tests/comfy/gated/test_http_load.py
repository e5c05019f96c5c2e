"""POST /longcat/avatar under load, on a real ComfyUI with small limits: jobs beyond the bound get 429 + Retry-After,
a wait beyond its limit gets 408 and the job is cancelled, finished records stay within their bytes and expire, inputs
go on every ending, and a prompt queued by the route looks like any other in /queue and /history.

A Gate prompt holds ComfyUI's worker, so "queued" is a fact rather than a race; no assertion depends on timing.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from support.avatar_requests import api_inputs, history, job_body, load, post, state, wait_done
from support.comfy_server import ComfyServer
from support.gated_server import LIMITS, Gate

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

MAX_JOBS = int(LIMITS["LONGCAT_AVATAR_MAX_JOBS"])
RECORD_TTL_S = float(LIMITS["LONGCAT_AVATAR_RECORD_TTL_S"])


def hold_worker(server: ComfyServer) -> Gate:
    """Queue a prompt that waits at a gate, so everything queued after it stays queued until the gate opens."""
    gate = Gate(server.base_dir / "gates")
    server.queue({"1": gate.node()})
    gate.wait_reached()
    return gate


def queue_items(server: ComfyServer) -> list[list[Any]]:
    """Every /queue entry, running then pending."""
    queue = server.get_json("/queue")
    return [*queue["queue_running"], *queue["queue_pending"]]


def test_jobs_beyond_the_bound_get_429_with_retry_after(gated_server: ComfyServer) -> None:
    gate = hold_worker(gated_server)
    try:
        accepted = [post(gated_server, job_body(i, wait=False)) for i in range(MAX_JOBS)]
        assert [a.status_code for a in accepted] == [202] * MAX_JOBS, [a.text for a in accepted]
        inputs = api_inputs(gated_server)
        refused = post(gated_server, job_body(MAX_JOBS, wait=False))
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        assert "LONGCAT_AVATAR_MAX_JOBS" in refused.json()["error"]
        assert api_inputs(gated_server) == inputs  # a refused request writes nothing
        assert load(gated_server)["active_jobs"] == MAX_JOBS
    finally:
        gate.open()
    for answer in accepted:
        done = wait_done(gated_server, answer.json()["job_id"])
        assert done.status_code == 200 and done.json()["status"] == "success", done.text
        assert done.json()["video"]
    assert api_inputs(gated_server) == []
    again = post(gated_server, job_body(MAX_JOBS, wait=False))  # room again
    assert again.status_code == 202 and wait_done(gated_server, again.json()["job_id"]).json()["status"] == "success"


def test_a_wait_beyond_its_limit_gets_408_and_the_job_is_cancelled(gated_server: ComfyServer) -> None:
    gate = hold_worker(gated_server)
    try:
        answer = post(gated_server, job_body(20, wait_timeout_s=1))
        assert answer.status_code == 408, answer.text
        body = answer.json()
        assert "wait limit" in body["error"] and '"wait": false' in body["error"]
        assert body["job_id"] not in {str(item[1]) for item in queue_items(gated_server)}  # taken out of the queue
        assert api_inputs(gated_server) == []
        record = state(gated_server, body["job_id"]).json()
        assert record["status"] == "error" and "wait limit" in record["error"]
    finally:
        gate.open()


def test_finished_records_stay_within_their_bytes_and_expire(gated_server: ComfyServer) -> None:
    gate = hold_worker(gated_server)
    ids: list[str] = []
    try:
        for round_ in range(4):  # each round: fill the bound with queued jobs, then delete them from the queue
            batch = [post(gated_server, job_body(30 + round_ * MAX_JOBS + i, wait=False)) for i in range(MAX_JOBS)]
            batch_ids = [answer.json()["job_id"] for answer in batch]
            requests.post(f"{gated_server.url}/queue", json={"delete": batch_ids}, timeout=60).raise_for_status()
            for job_id in batch_ids:
                ended = wait_done(gated_server, job_id).json()
                assert ended["status"] == "error" and "removed from the queue" in ended["error"]
            ids += batch_ids
            assert api_inputs(gated_server) == []  # deleted jobs remove their inputs too
    finally:
        gate.open()
    limits = load(gated_server)
    assert 0 < limits["record_bytes"] <= limits["limits"]["max_record_bytes"]
    kept = [job_id for job_id in ids if state(gated_server, job_id).status_code == 200]
    assert kept and kept == ids[-len(kept) :] and len(kept) < len(ids)  # the oldest went first
    time.sleep(RECORD_TTL_S + 1)  # expiry is measured in time: wait past it
    assert all(state(gated_server, job_id).status_code == 404 for job_id in kept)
    assert load(gated_server)["finished_records"] == 0


def own_copy(server: ComfyServer, workflow: dict[str, Any]) -> dict[str, Any]:
    """The route's workflow with another seed (so it runs rather than coming from the cache) and its own copies of
    the media (the route removes its job's inputs when the job ends)."""
    workflow = json.loads(json.dumps(workflow))
    next(n for n in workflow.values() if n["class_type"] == "LongCatAvatarSampler")["inputs"]["seed"] += 1
    for node in workflow.values():
        if node["class_type"] in ("LoadImage", "LoadAudio"):
            key = "image" if node["class_type"] == "LoadImage" else "audio"
            node["inputs"][key] = server.upload(server.input_dir / node["inputs"][key], subfolder="direct")
    return workflow


def _shape(value: Any) -> Any:
    """The structure of a JSON value: types, dict keys and list lengths, without the values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def test_a_route_prompt_looks_like_a_post_prompt_one(gated_server: ComfyServer) -> None:
    gate = hold_worker(gated_server)
    try:
        routed = post(gated_server, job_body(50, wait=False)).json()["job_id"]
        route_item = next(item for item in queue_items(gated_server) if item[1] == routed)
        workflow = own_copy(gated_server, route_item[2])
        answer = requests.post(f"{gated_server.url}/prompt", json={"prompt": workflow}, timeout=60)
        direct = answer.json()["prompt_id"]  # through a plain POST /prompt
        direct_item = next(item for item in queue_items(gated_server) if item[1] == direct)
        assert _shape(route_item) == _shape(direct_item)
        assert route_item[0] + 1 == direct_item[0]  # ComfyUI numbered both, one after the other
        assert route_item[3].keys() == direct_item[3].keys() and route_item[4] == direct_item[4]
    finally:
        gate.open()
    assert wait_done(gated_server, routed).json()["status"] == "success"
    histories = [history(gated_server, prompt_id) for prompt_id in (routed, direct)]
    assert _shape(histories[0]["prompt"]) == _shape(histories[1]["prompt"])
    assert histories[0]["outputs"].keys() == histories[1]["outputs"].keys()
    assert {k: _shape(v) for k, v in histories[0].items() if k not in ("status", "meta", "outputs")} == {
        k: _shape(v) for k, v in histories[1].items() if k not in ("status", "meta", "outputs")
    }
    assert histories[0]["status"]["status_str"] == histories[1]["status"]["status_str"] == "success"
