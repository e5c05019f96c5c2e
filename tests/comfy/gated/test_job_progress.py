"""Job progress on a real ComfyUI with tiny models (select with -k job_progress): GET /longcat/avatar/<id> reports the
phase, the sampler's segment and steps and the time left, read from ComfyUI's progress registry; `status --follow`
prints it; AvatarGenerator.job_status reads it.

Gates make "at this phase" a fact; where a run is watched freely, only the order of what was seen is checked (it
never goes back, and it ends done), never which states a poll happened to catch.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from longcat_avatar import AvatarGenerator
from longcat_avatar import workflow as wf
from longcat_avatar.job_progress import PHASES, JobProgress
from support.avatar_requests import EXAMPLES, JOB_WAIT_S, direct_prompt, job_body, post, state, wait_done, wait_idle
from support.comfy_server import REPO_ROOT, ComfyServer
from support.gated_server import Gate, insert_gate
from support.suite_limits import SERVER_TIMEOUT_S

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

SEGMENTS = 2  # the example speech twice (6.7 s, 168 frames at 25 fps): two segments of 93 frames cover it


def two_segment_speech() -> bytes:
    """The example speech twice in a row."""
    with wave.open(str(EXAMPLES / "speech.wav"), "rb") as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as target:
        target.setparams(params)
        target.writeframes(frames + frames)
    return buffer.getvalue()


def progress_of(server: ComfyServer, job_id: str) -> tuple[str, JobProgress]:
    """The job's status and progress from GET /longcat/avatar/<id>?video=false."""
    answer = state(server, f"{job_id}?video=false")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "video" not in body
    return body["status"], JobProgress.from_json(body["progress"])


def assert_forward(seen: list[JobProgress]) -> None:
    """Progress never went back, and it ended done with every step of its one segment (a tiny job's)."""
    ranks = [p.rank() for p in seen]
    assert ranks == sorted(ranks), seen
    final = seen[-1]
    assert final.phase == "done" and final.segment == final.segments == 1, final
    assert final.steps_done == final.steps_total > 0 and final.time_left_s == 0, final
    for progress in seen:
        if progress.segment is not None:  # None while the sampler node starts, before it published its plan
            assert 1 <= progress.segment <= progress.segments == 1, progress
            assert 0 <= progress.steps_done <= progress.steps_total, progress


def hold_worker(server: ComfyServer) -> Gate:
    """A prompt waiting at a gate: what is queued after it stays queued until the gate opens."""
    gate = Gate(server.base_dir / "gates")
    server.queue({"1": gate.node()})
    gate.wait_reached()
    return gate


def test_job_progress_at_each_phase_of_a_prompt_queued_elsewhere(gated_server: ComfyServer, tmp_path: Path) -> None:
    prompt = direct_prompt(gated_server, 700, tmp_path, audio=two_segment_speech())
    gates = {node: Gate(gated_server.base_dir / "gates") for node in (wf.SAMPLER_NODE, wf.DECODE_NODE, wf.COMBINE_NODE)}
    for node, gate in gates.items():
        prompt = insert_gate(prompt, node, gate)
    prompt_id = gated_server.queue(prompt)  # through ComfyUI's own /prompt, not our route
    seen = []
    for node, gate in gates.items():
        gate.wait_reached()
        status, progress = progress_of(gated_server, prompt_id)
        assert status == "running", (node, status)
        seen.append(progress)
        gate.open()
    encoding, sampled, decoded = seen
    assert encoding == JobProgress("encoding"), encoding
    assert sampled.phase == "sampling" and sampled.segment == sampled.segments == SEGMENTS, sampled
    assert sampled.steps_done == sampled.steps_total > SEGMENTS and sampled.time_left_s == 0, sampled
    assert decoded.phase == "decoding" and decoded.steps_done == sampled.steps_total, decoded
    done = wait_done(gated_server, prompt_id).json()
    assert done["status"] == "success" and done["filename"].endswith(".mp4"), done
    assert done["progress"]["phase"] == "done"  # from /history: a prompt the route did not start has no step record


def test_job_progress_through_the_route_moves_forward_to_done(gated_server: ComfyServer) -> None:
    wait_idle(gated_server)
    gate = hold_worker(gated_server)
    try:
        body = job_body(701, wait=False)
        answer = post(gated_server, body)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        status, first = progress_of(gated_server, job_id)
        assert status == "queued" and first == JobProgress("queued")
    finally:
        gate.open()
    seen = [first]
    while status in ("queued", "running"):
        status, progress = progress_of(gated_server, job_id)
        seen.append(progress)
    assert status == "success"
    assert_forward(seen)
    final = AvatarGenerator(gated_server.url).job_status(job_id)
    assert final.status == "success" and final.progress == seen[-1] and final.filename
    assert state(gated_server, job_id).json()["video"]  # the video is still there without ?video=false


def cli_status(server: ComfyServer, *args: str) -> subprocess.Popen[str]:
    """`python -m longcat_avatar status ...` against the server, its output readable line by line."""
    command = [sys.executable, "-m", "longcat_avatar", "status", *args, "--server", server.url]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def phases_printed(lines: list[str]) -> list[str]:
    """The phase each printed status line names."""
    pattern = re.compile(r": (?:queued|running|success), (\w+)")
    return [match.group(1) for line in lines if (match := pattern.search(line))]


def test_job_progress_status_follow_cli_end_to_end(gated_server: ComfyServer) -> None:
    wait_idle(gated_server)
    gate = hold_worker(gated_server)
    try:
        body = job_body(702, wait=False)
        job_id = post(gated_server, body).json()["job_id"]
        follow = cli_status(gated_server, job_id, "--follow")
        assert follow.stdout is not None
        first = follow.stdout.readline()  # printed while the gate still holds the worker
        assert phases_printed([first]) == ["queued"], first
    finally:
        gate.open()
    rest, errors = follow.communicate(timeout=JOB_WAIT_S)
    lines = [first, *rest.splitlines()]
    assert follow.returncode == 0, (lines, errors)
    phases = phases_printed(lines)
    assert [PHASES.index(p) for p in phases] == sorted(PHASES.index(p) for p in phases), lines
    assert phases[-1] == "done" and f"{job_id}: success" in lines[-1], lines
    once = cli_status(gated_server, job_id)
    out, _ = once.communicate(timeout=SERVER_TIMEOUT_S)
    assert once.returncode == 0 and out.strip() == lines[-1].strip(), out


def test_job_progress_status_of_an_unknown_job_is_a_readable_error(gated_server: ComfyServer) -> None:
    unknown = cli_status(gated_server, "no-such-job")
    out, errors = unknown.communicate(timeout=SERVER_TIMEOUT_S)
    assert unknown.returncode == 1 and "no such job" in errors, (out, errors)
