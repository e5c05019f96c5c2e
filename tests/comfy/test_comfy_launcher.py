"""The pack's ComfyUI launcher on its own: defaults (temporary base directory, free port), its log, a start that fails,
and a stop that leaves nothing behind."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from longcat_avatar.comfy_launcher import PACK_ROOT, ComfyLauncher, ComfyLaunchError
from support.comfy_server import find_comfyui_dir

pytestmark = pytest.mark.comfy


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_folder_without_comfyui_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ComfyLaunchError, match=f"main.py is not in {tmp_path}"):
        ComfyLauncher(tmp_path).start()


def test_a_server_that_exits_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    launcher = ComfyLauncher(find_comfyui_dir(), extra_args=["--no-such-option"], log_file=tmp_path / "comfy.log")
    with pytest.raises(ComfyLaunchError, match="exited with code 2 while starting") as failed:
        launcher.start()
    assert "--no-such-option" in str(failed.value) and "--no-such-option" in launcher.log_text()
    assert not launcher.running and not launcher.base_dir.exists()  # the temporary base directory went with it


def test_defaults_start_a_server_with_the_pack_and_stop_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "comfy.log"
    with ComfyLauncher(find_comfyui_dir(), extra_args=["--cpu"], log_file=log) as server:
        with urllib.request.urlopen(server.url + "/object_info/LongCatAvatarSampler", timeout=30) as response:
            assert "LongCatAvatarSampler" in json.load(response)  # the pack loaded under its own folder name
        assert (server.base_dir / "custom_nodes" / PACK_ROOT.name).resolve() == PACK_ROOT
        assert server.base_dir != find_comfyui_dir() and server.models_dir.is_dir() and server.running
        base, port = server.base_dir, server.port
    assert not server.running and not base.exists() and _port_is_free(port)
    assert "To see the GUI go to" in log.read_text()  # the log stays where the caller asked
