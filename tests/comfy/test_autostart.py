"""generate and batch start a headless ComfyUI when nothing answers at the server URL (select with -k autostart):
the ComfyUI given with --comfyui (the CI's, as a folder laid out like an installation: the pack under custom_nodes,
the tiny models in models/) makes the MP4, and no ComfyUI process is left afterwards, also after Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from longcat_avatar.comfy_launcher import OFFLINE_ENV, free_port
from support.avatar_graph import ensure_tiny_models, wav_duration
from support.comfy_server import PACK_FOLDER_NAME, REPO_ROOT, ComfyServer, find_comfyui_dir
from support.video_probe import probe

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

EXAMPLES = REPO_ROOT / "examples"
TINY_ARGS = ("--resolution", "32x32", "--steps", "1", "--distilled", "off", "--seed", "7")  # the cheapest real job
START_WAIT_S = 600  # a ComfyUI start on a busy 2-core machine; only a hung start takes this long


@pytest.fixture(scope="module")
def comfyui_folder(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ComfyUI folder as a user has it: ComfyUI's files, the pack in custom_nodes/, the (tiny) models in models/."""
    ensure_tiny_models(comfy_server.models_dir)
    folder = tmp_path_factory.mktemp("comfyui-install")
    for entry in find_comfyui_dir().iterdir():
        if entry.name not in ("models", "custom_nodes"):
            (folder / entry.name).symlink_to(entry)
    (folder / "models").symlink_to(comfy_server.models_dir, target_is_directory=True)
    (folder / "custom_nodes").mkdir()
    (folder / "custom_nodes" / PACK_FOLDER_NAME).symlink_to(REPO_ROOT, target_is_directory=True)
    return folder


@pytest.fixture
def nothing_listening() -> Iterator[str]:
    """$COMFYUI_URL for a port where nothing listens."""
    yield f"http://127.0.0.1:{free_port()}"


def generate_command(output: Path, *options: str) -> list[str]:
    """`python -m longcat_avatar generate` of the example portrait and speech, with `options`."""
    media = ["--image", str(EXAMPLES / "portrait.png"), "--audio", str(EXAMPLES / "speech.wav")]
    return [sys.executable, "-m", "longcat_avatar", "generate", *media, "--output", str(output), *options]


def generate(folder: Path, url: str, output: Path) -> subprocess.Popen[str]:
    """`generate` without --server: $COMFYUI_URL names a port where nothing answers."""
    command = generate_command(output, *TINY_ARGS, "--quiet", "--comfyui", str(folder), "--comfyui-args=--cpu")
    env = {**os.environ, **OFFLINE_ENV, "COMFYUI_URL": url}
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_in_a_terminal)  # fmt: skip


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT back to its default in the command, as a terminal starts it: a parallel test runner's worker ignores
    SIGINT and a child inherits that, and Python installs its KeyboardInterrupt handler only over the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def comfyui_processes(folder: Path) -> list[int]:
    """Processes running ComfyUI's main.py from `folder` (the started server's working directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cwd, cmdline = os.readlink(proc / "cwd"), (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or it ended meanwhile
            continue
        if cwd == str(folder) and b"main.py" in cmdline:
            found.append(int(proc.name))
    return found


def test_autostart_generate_starts_comfyui_makes_the_mp4_and_stops_it(
    comfyui_folder: Path, nothing_listening: str, tmp_path: Path
) -> None:
    output = tmp_path / "auto.mp4"
    run = generate(comfyui_folder, nothing_listening, output)
    out, errors = run.communicate(timeout=START_WAIT_S * 2)
    assert run.returncode == 0, errors
    assert f"nothing answers at {nothing_listening}: starting ComfyUI from {comfyui_folder}" in errors
    assert f"Wrote {output}" in out
    info = probe(output)
    assert info.video_codec == "h264" and abs(info.frame_count - wav_duration(EXAMPLES / "speech.wav") * 25) <= 1
    assert comfyui_processes(comfyui_folder) == []


def test_autostart_ctrl_c_stops_the_started_comfyui(
    comfyui_folder: Path, nothing_listening: str, tmp_path: Path
) -> None:
    run = generate(comfyui_folder, nothing_listening, tmp_path / "never.mp4")
    deadline = time.monotonic() + START_WAIT_S
    while not comfyui_processes(comfyui_folder):  # the server process exists: Ctrl-C now has something to stop
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.1)
    run.send_signal(signal.SIGINT)  # to the command only, as if ComfyUI were not in the terminal's process group
    _, errors = run.communicate(timeout=START_WAIT_S)
    assert run.returncode != 0 and "interrupted" in errors.lower(), errors
    assert comfyui_processes(comfyui_folder) == []


def test_autostart_server_given_keeps_todays_behaviour(nothing_listening: str, tmp_path: Path) -> None:
    command = generate_command(tmp_path / "x.mp4", "--server", nothing_listening)
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 3 and "starting ComfyUI" not in result.stderr, result.stderr
