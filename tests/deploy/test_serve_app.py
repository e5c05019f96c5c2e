"""The Ray Serve application (deploy/serve_app.py) on a local cluster: two replicas each with its own real ComfyUI on
the CPU with tiny models. Four concurrent jobs served by both, the fifth refused with 503; a wait past its limit 408
and the replica then serves the next job; a replica's ComfyUI killed mid-job: the job runs again elsewhere, and the
replica that Serve starts instead serves again.

Gates (support/gated_server.py) hold a ComfyUI's worker, so "both replicas hold a job" and "mid-job" are facts the
tests wait for, never races. The tests run in file order; the last one replaces a replica.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from collections.abc import Iterable
from typing import Any

import pytest

from support.avatar_requests import job_body
from support.gated_server import Gate
from support.serve_cluster import START_WAIT_S, ReplicaChild, ServeApp, poll

pytestmark = [pytest.mark.comfy, pytest.mark.slow]


def _hold_all(app: ServeApp, children: Iterable[ReplicaChild]) -> list[Gate]:
    return [child.hold(app.gates_dir) for child in children]


def _open(gates: Iterable[Gate]) -> None:
    for gate in gates:
        gate.open()


def _each_holds_one_job(children: Iterable[ReplicaChild]) -> None:
    """Wait until every ComfyUI has taken one job from its replica (Serve gave each replica one)."""
    for child in children:
        poll(lambda child=child: child.load()["active_jobs"] == 1 or None, START_WAIT_S, f"a job on {child.replica}")


def _served_by_each(app: ServeApp, children: dict[str, ReplicaChild], first: int) -> list[dict[str, Any]]:
    """One job per replica (the ComfyUIs held until each took its job): the jobs' final records."""
    gates = _hold_all(app, children.values())
    try:
        accepted = [app.post(job_body(first + n, wait=False)) for n in range(len(children))]
        assert [answer.status_code for answer in accepted] == [202] * len(children), [a.text for a in accepted]
        _each_holds_one_job(children.values())
    finally:
        _open(gates)
    return [app.wait_done(answer.json()["job_id"]) for answer in accepted]


def _assert_video(record: dict[str, Any]) -> None:
    assert record["status"] == "success", record
    assert base64.b64decode(record["video"])[4:8] == b"ftyp"  # an MP4: its first box is ftyp


def test_four_concurrent_jobs_are_spread_over_both_replicas_and_a_fifth_gets_503(serve_cluster: ServeApp) -> None:
    serve_cluster.wait_idle()
    children = serve_cluster.wait_children(lambda found: len(found) == 2)
    assert len({child.pid for child in children.values()}) == 2  # each replica its own ComfyUI
    gates = _hold_all(serve_cluster, children.values())
    try:
        accepted = [serve_cluster.post(job_body(300 + n, wait=False)) for n in range(4)]
        assert [answer.status_code for answer in accepted] == [202] * 4, [a.text for a in accepted]
        refused = serve_cluster.post(job_body(304, wait=False))
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        _each_holds_one_job(children.values())
    finally:
        _open(gates)
    records = [serve_cluster.wait_done(answer.json()["job_id"]) for answer in accepted]
    for record in records:
        _assert_video(record)
    assert {record["replica"] for record in records} == set(children)


def test_a_wait_past_its_limit_is_408_and_that_replica_serves_the_next_job(serve_cluster: ServeApp) -> None:
    serve_cluster.wait_idle()
    children = serve_cluster.wait_children(lambda found: len(found) == 2)
    gates = _hold_all(serve_cluster, children.values())
    try:
        timed_out = serve_cluster.post(job_body(310, wait_timeout_s=1))  # waits behind a gate: never finishes in 1 s
    finally:
        _open(gates)
    assert timed_out.status_code == 408, timed_out.text
    replica = timed_out.json()["replica"]
    assert replica in children
    for child in children.values():
        assert child.load()["active_jobs"] == 0  # the timed-out job was taken out of its ComfyUI
    records = _served_by_each(serve_cluster, children, 311)
    for record in records:
        _assert_video(record)
    assert replica in {record["replica"] for record in records}


def test_a_comfyui_killed_mid_job_is_retried_and_its_replacement_serves(
    serve_cluster: ServeApp, record_property: Any
) -> None:
    serve_cluster.wait_idle()
    children = serve_cluster.wait_children(lambda found: len(found) == 2)
    gates = _hold_all(serve_cluster, children.values())
    try:
        job_id = serve_cluster.post(job_body(320, wait=False)).json()["job_id"]
        victim = poll(lambda: next((c for c in children.values() if c.load()["active_jobs"]), None), 600, "the job")
        killed_at = time.time()
        os.kill(victim.pid, signal.SIGKILL)
    finally:
        _open(gates)
    record = serve_cluster.wait_done(job_id)
    _assert_video(record)
    assert record["attempts"] == 2 and record["replica"] != victim.replica, record
    now = serve_cluster.wait_children(lambda found: len(found) == 2 and victim.replica not in found)
    (replacement,) = set(now) - set(children)
    figures = {"replacement_ready_s": round(now[replacement].ready_at - killed_at, 1), "retry": record["status"]}
    record_property("serve_fault", json.dumps(figures))
    print(f"serve fault figures: {json.dumps(figures)}")
    records = _served_by_each(serve_cluster, now, 321)
    for served in records:
        _assert_video(served)
    assert replacement in {served["replica"] for served in records}
