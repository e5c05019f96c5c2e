"""Soak and faults on a real ComfyUI with tiny models (select with -k soak / -k fault): twenty jobs in a row with
resident memory flat after the third and the job records within their bound; three concurrent clients; a Cancel at
each phase followed by a run that succeeds; the server killed mid-job and restarted.

Gates make "at this phase" and "mid-job" facts rather than races; memory is read from /proc.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from longcat_avatar import AvatarGenerator
from longcat_avatar import workflow as wf
from longcat_avatar.errors import ServerUnavailableError
from support.avatar_requests import (
    EXAMPLES,
    TINY,
    api_inputs,
    direct_prompt,
    history,
    job_body,
    load,
    post,
    wait_done,
    wait_idle,
)
from support.comfy_server import ComfyServer
from support.gated_server import Gate, insert_gate, resident_bytes, restart, server_pid
from support.video_probe import probe

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

SOAK_JOBS = 20
WARM_JOBS = 3  # model loads and first-run caches settle during the first jobs; memory must stay flat after them
MAX_GROWTH = 0.05  # resident memory may grow at most 5 % from job 3 to job 20
SOAK_TIMEOUT_S = 2400  # twenty tiny jobs: a few minutes on a quiet machine, far more on a shared busy one
PHASES = [
    "LongCatAvatarAudioEncode",
    "LongCatAvatarTextEncode",
    "LongCatAvatarSampler",
    "LongCatAvatarDecode",
    "LongCatAvatarVideoCombine",
]
PARTIAL_NAME = ".longcat-writing-0123456789abcdef.part"  # what a writer killed mid-write leaves (atomic_file)


# MP4s already decoded whole, by path, with the (size, mtime) they had then: an unchanged file is not decoded again
# (the module's tests leave dozens of videos in output/, and counting every one's frames after each test cost minutes).
_WHOLE: dict[Path, tuple[int, int]] = {}


def _videos_whole(output: Path) -> None:
    """No unfinished file anywhere in output/, and every MP4 there decodes completely."""
    assert not list(output.rglob(".longcat-writing-*")), "an unfinished video is left in output/"
    for video in output.rglob("*.mp4"):
        stat = video.stat()
        if _WHOLE.get(video) == (stat.st_size, stat.st_mtime_ns):
            continue
        info = probe(video)
        assert info.frame_count > 0 and info.video_duration > 0, video
        _WHOLE[video] = (stat.st_size, stat.st_mtime_ns)


@pytest.mark.timeout(SOAK_TIMEOUT_S)
def test_soak_twenty_jobs_in_a_row_keep_memory_flat(gated_server: ComfyServer, record_property: Any) -> None:
    wait_idle(gated_server)
    pid = server_pid(gated_server)
    resident: list[int] = []
    for job in range(SOAK_JOBS):
        started = time.monotonic()
        answer = post(gated_server, job_body(100 + job))
        print(f"soak job {job + 1}: {time.monotonic() - started:.1f} s", flush=True)
        assert answer.status_code == 200, answer.text
        resident.append(resident_bytes(pid))
        state = load(gated_server)
        assert state["record_bytes"] <= state["limits"]["max_record_bytes"], state
        assert state["active_jobs"] == 0
    base, end = resident[WARM_JOBS - 1], resident[-1]
    figures = {"rss_after_job_3_mb": base / 2**20, "rss_after_job_20_mb": end / 2**20, "growth": end / base - 1}
    record_property("soak_memory", json.dumps(figures))
    print(f"soak memory: {json.dumps(figures)}; per job MB: {[round(r / 2**20) for r in resident]}")
    print("\n".join(line for line in gated_server.log_text().splitlines() if "Prompt executed in" in line))
    assert end <= base * (1 + MAX_GROWTH), figures
    assert api_inputs(gated_server) == []
    _videos_whole(gated_server.output_dir)


def test_soak_three_concurrent_clients(gated_server: ComfyServer) -> None:
    answers: dict[int, Any] = {}
    wait_idle(gated_server)  # all three slots free

    def client(number: int) -> None:
        answers[number] = post(gated_server, job_body(200 + number))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [0, 1, 2]
    assert all(a.status_code == 200 for a in answers.values()), [a.text for a in answers.values()]
    assert len({a.json()["filename"] for a in answers.values()}) == 3  # three videos, not one served three times
    assert {a.json()["seed"] for a in answers.values()} == {job_body(200 + n)["seed"] for n in range(3)}
    assert api_inputs(gated_server) == []


@pytest.mark.parametrize("phase", PHASES)
def test_fault_cancel_at_each_phase_then_a_run_succeeds(gated_server: ComfyServer, tmp_path: Path, phase: str) -> None:
    prompt = direct_prompt(gated_server, 400 + PHASES.index(phase), tmp_path)
    target = next(node_id for node_id, node in prompt.items() if node["class_type"] == phase)
    sources = {v[0] for v in prompt[target]["inputs"].values() if isinstance(v, list) and len(v) == 2}
    gate = Gate(gated_server.base_dir / "gates")
    prompt_id = gated_server.queue(insert_gate(prompt, phase, gate))
    gate.wait_reached()  # the prompt holds at the entry of `phase`, everything it needs done
    gated_server.interrupt()
    messages = dict(history(gated_server, prompt_id)["status"]["messages"])
    interrupted = messages["execution_interrupted"]
    assert interrupted["node_type"] == "LongCatTestGate" and "execution_success" not in messages
    ran = set(interrupted["executed"]) | set(messages.get("execution_cached", {}).get("nodes", []))
    assert sources <= ran and target not in ran, (sources, ran)
    _videos_whole(gated_server.output_dir)
    run = gated_server.run(prompt, timeout=900)  # the same graph without the gate: what was cached stays right
    assert run.status == "success", run.error_message()
    assert run.outputs()  # the video was written
    _videos_whole(gated_server.output_dir)


def test_fault_server_killed_mid_job_then_restarted(gated_server: ComfyServer, tmp_path: Path) -> None:
    gate = Gate(gated_server.base_dir / "gates")
    template = insert_gate(wf.load_workflow(wf.find_workflow("1.5", tts=False)), wf.COMBINE_NODE, gate)
    generator = AvatarGenerator(gated_server.url, workflow=template)
    failure: dict[str, BaseException] = {}

    def client() -> None:
        try:
            generator.generate(EXAMPLES / "portrait.png", EXAMPLES / "speech.wav", tmp_path / "x.mp4", seed=9,
                               resolution=TINY["resolution"])  # fmt: skip
        except BaseException as error:  # the test reads it below
            failure["error"] = error

    thread = threading.Thread(target=client)
    thread.start()
    gate.wait_reached()  # the client's job has decoded its frames and waits just before writing the video
    queued = post(gated_server, job_body(500, wait=False))  # an endpoint job queued behind it, its inputs on disk
    assert queued.status_code == 202 and api_inputs(gated_server)
    partial = gated_server.output_dir / "LongCatAvatar" / PARTIAL_NAME
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"\0" * 4096)  # as a writer killed mid-write leaves it (tests/unit/test_video_atomic.py)
    gated_server.stop()  # SIGTERM: ComfyUI has no handler for it, so the process dies on the spot
    thread.join(timeout=120)
    assert not thread.is_alive()
    error = failure.get("error")
    assert isinstance(error, ServerUnavailableError), repr(error)
    assert "Could not reach ComfyUI" in str(error) and "Start ComfyUI first" in str(error)  # says what to do
    assert not (tmp_path / "x.mp4").exists()
    restart(gated_server)
    _videos_whole(gated_server.output_dir)  # the killed writer's file is gone
    assert api_inputs(gated_server) == []  # the killed endpoint job's inputs too
    answer = post(gated_server, job_body(501))
    assert answer.status_code == 200, answer.text
    assert wait_done(gated_server, queued.json()["job_id"]).status_code == 404  # a job of the killed server
