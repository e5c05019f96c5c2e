"""Videos appear whole or not at all: a real writer process killed (SIGKILL) mid-write leaves no file under a final name,
its hidden temporary is removed by the next writer, a live writer's temporary is left alone, names never collide."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.video.atomic_file import PARTIAL_PREFIX, remove_stale_partials
from pipeline.video.mux import save_mp4
from support.suite_limits import UNIT_TIMEOUT_S
from support.video_probe import probe

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

REPO_ROOT = Path(__file__).resolve().parents[2]
FRAMES = 12  # half a second at 25 fps: a real MP4, written in a blink
LOOKAHEAD_FRAMES = 60  # more than x264's default look-ahead (40 frames at preset medium)
# A writer process: saves FRAMES frames into argv[1]; after frame argv[2] it says "paused" and waits for a line on
# stdin (the test kills it there); at the end it prints the final path.
WRITER = """
import sys, torch
from pipeline.video.mux import save_mp4
folder, pause_at, frames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def frames_then_pause():
    for index in range(frames):
        if index == pause_at:
            print("paused", flush=True)
            sys.stdin.readline()
        yield torch.full((32, 32, 3), index / frames)
path = save_mp4(folder, "avatar", 1, frames_then_pause(), 25)
print("saved", path, flush=True)
sys.stdin.readline()
"""


def _start_writer(folder: Path, pause_at: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", WRITER, str(folder), str(pause_at), str(FRAMES)]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _wait_for(process: subprocess.Popen[str], word: str) -> str:
    """The writer's first line starting with `word` (it blocks right after printing it)."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(word):
            return line.strip()
    raise AssertionError(f"the writer exited with {process.wait()} before saying {word!r}")


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=UNIT_TIMEOUT_S)


def _listing(folder: Path) -> tuple[list[str], list[str]]:
    """(final videos, hidden temporaries) in the folder."""
    names = sorted(p.name for p in folder.iterdir())
    return [n for n in names if n.endswith(".mp4")], [n for n in names if n.startswith(PARTIAL_PREFIX)]


@pytest.mark.parametrize("pause_at", [0, FRAMES // 2, FRAMES - 1])
def test_a_writer_killed_mid_write_leaves_no_video(tmp_path: Path, pause_at: int) -> None:
    writer = _start_writer(tmp_path, pause_at)
    try:
        _wait_for(writer, "paused")
        videos, partials = _listing(tmp_path)
        assert videos == [] and len(partials) == 1  # no placeholder under a final name while it writes
        assert remove_stale_partials(tmp_path) == []  # a live writer's temporary is left alone
    finally:
        _kill(writer)
    assert _listing(tmp_path) == ([], partials)  # the kill left only the hidden temporary
    assert [p.name for p in remove_stale_partials(tmp_path)] == partials
    assert list(tmp_path.iterdir()) == []


def test_a_writer_killed_after_saving_leaves_the_whole_video(tmp_path: Path) -> None:
    writer = _start_writer(tmp_path, FRAMES)  # never pauses inside the frames
    try:
        saved = Path(_wait_for(writer, "saved").split(" ", 1)[1])
    finally:
        _kill(writer)
    assert _listing(tmp_path) == ([saved.name], [])
    assert probe(saved).frame_count == FRAMES


def test_the_next_writer_removes_a_killed_writers_temporary(tmp_path: Path) -> None:
    writer = _start_writer(tmp_path, 2)
    try:
        _wait_for(writer, "paused")
    finally:
        _kill(writer)
    (tmp_path / "avatar_00001_.mp4").write_bytes(b"an earlier video, kept")
    path = save_mp4(tmp_path, "avatar", 1, torch.zeros(3, 16, 16, 3), 25)
    assert path.name == "avatar_00002_.mp4"  # the next free name; the earlier file is not touched
    assert (tmp_path / "avatar_00001_.mp4").read_bytes() == b"an earlier video, kept"
    assert _listing(tmp_path) == (["avatar_00001_.mp4", "avatar_00002_.mp4"], [])


def test_a_failing_encode_leaves_nothing(tmp_path: Path) -> None:
    def frames():
        yield from torch.zeros(LOOKAHEAD_FRAMES, 16, 16, 3)  # enough for x264 to emit packets, so bytes are written
        raise RuntimeError("the decoder failed")

    with pytest.raises(RuntimeError, match="decoder failed"):
        save_mp4(tmp_path, "avatar", 1, frames(), 25, (np.zeros((1, 1600), np.float32), 16000))
    assert list(tmp_path.iterdir()) == []
