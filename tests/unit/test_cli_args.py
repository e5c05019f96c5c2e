"""The command line itself (`python -m longcat_avatar`): help, argument errors, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from longcat_avatar.comfy_launcher import free_port
from support.comfy_server import REPO_ROOT
from support.suite_limits import UNIT_TIMEOUT_S

EXAMPLES = REPO_ROOT / "examples"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI from the repository folder, as the README says."""
    return subprocess.run(
        [sys.executable, "-m", "longcat_avatar", *args], cwd=REPO_ROOT, capture_output=True, text=True, env=env,
        timeout=UNIT_TIMEOUT_S,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("generate", ["--image", "--audio", "--text", "--output", "--steps", "--guidance", "--text-guidance", "--fps",
                      "--seed", "--version", "--resolution", "--prompt", "--server"]),
        ("batch", ["--config", "--strict", "--check", "--server"]),
        ("create-config", ["--output", "--force"]),
        ("doctor", ["--comfyui", "--models-dir", "--selftest", "--json"]),
    ],
)  # fmt: skip
def test_every_command_has_help(command: str, options: list[str]) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0, result.stderr
    for option in options:
        assert option in result.stdout, option


def test_top_level_help_lists_the_commands() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("generate", "batch", "create-config", "doctor"):
        assert command in result.stdout


def test_missing_and_conflicting_arguments_exit_2() -> None:
    assert cli("generate", "--audio", "a.wav", "--output", "o.mp4").returncode == 2
    both = cli("generate", "--image", "a.png", "--audio", "a.wav", "--text", "hi", "--output", "o.mp4")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    assert cli().returncode == 2


def test_out_of_range_values_are_refused_before_any_connection(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here: a connection attempt would give exit 3, not 2
    result = cli(
        "generate", "--image", str(EXAMPLES / "portrait.png"), "--audio", str(EXAMPLES / "speech.wav"),
        "--output", str(tmp_path / "o.mp4"), "--steps", "0", "--guidance", "11", "--fps", "31",
        "--server", f"http://127.0.0.1:{port}",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "steps must be between 1 and 100, got 0" in result.stderr
    assert "guidance must be between 1 and 10, got 11" in result.stderr
    assert "fps must be between 15 and 30, got 31" in result.stderr
    assert "Traceback" not in result.stderr
    missing = cli("generate", "--image", "nope.png", "--audio", str(EXAMPLES / "speech.wav"), "--output", "o.mp4")
    assert missing.returncode == 2 and "image file nope.png does not exist" in missing.stderr


def test_server_down_says_how_to_start_comfyui(tmp_path: Path) -> None:
    port = free_port()
    result = cli(
        "generate", "--image", str(EXAMPLES / "portrait.png"), "--audio", str(EXAMPLES / "speech.wav"),
        "--output", str(tmp_path / "o.mp4"), "--server", f"http://127.0.0.1:{port}",
    )  # fmt: skip
    assert result.returncode == 3
    assert (
        f"Could not reach ComfyUI at http://127.0.0.1:{port} (connection refused: nothing listens there)"
        in result.stderr
    )
    assert "python main.py" in result.stderr and "COMFYUI_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_comfyui_url_from_the_environment(tmp_path: Path) -> None:
    import os

    port = free_port()
    env = dict(os.environ, COMFYUI_URL=f"127.0.0.1:{port}")
    env.pop("COMFYUI_DIR", None)  # no ComfyUI to start (the repository is not in a custom_nodes folder)
    result = cli("generate", "--image", str(EXAMPLES / "portrait.png"), "--audio", str(EXAMPLES / "speech.wav"),
                 "--output", str(tmp_path / "o.mp4"), env=env)  # fmt: skip
    assert result.returncode == 3 and f"http://127.0.0.1:{port}" in result.stderr
    assert "no ComfyUI folder was found to start one: pass --comfyui DIR" in result.stderr


def test_create_config_then_check(tmp_path: Path) -> None:
    config = tmp_path / "sub" / "jobs.json"
    result = cli("create-config", "--output", str(config))
    assert result.returncode == 0 and config.is_file()
    assert len(json.loads(config.read_text())) == 2
    again = cli("create-config", "--output", str(config))
    assert again.returncode == 2 and "--force" in again.stderr
    check = cli("batch", "--config", str(config), "--check")
    assert check.returncode == 0, check.stderr
    assert "2 job(s)" in check.stdout and "2 valid, 0 invalid" in check.stdout


def test_batch_check_reports_invalid_jobs(tmp_path: Path) -> None:
    config = tmp_path / "jobs.json"
    config.write_text(json.dumps([{"referenceImage": str(EXAMPLES / "portrait.png"), "audio": "x.wav",
                                   "output": "o.mp4", "numInferenceSteps": 101}]))  # fmt: skip
    result = cli("batch", "--config", str(config), "--check")
    assert result.returncode == 2
    assert "job 1 is invalid" in result.stderr and "steps must be between 1 and 100, got 101" in result.stderr
    strict = cli("batch", "--config", str(config), "--strict", "--server", f"http://127.0.0.1:{free_port()}")
    assert strict.returncode == 2  # --strict: nothing runs when a job is invalid


def test_client_needs_audio_or_text(tmp_path: Path) -> None:
    from longcat_avatar import AvatarGenerator, InvalidParametersError

    generator = AvatarGenerator(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(InvalidParametersError, match="non-empty text to speak"):
        generator.speak(EXAMPLES / "portrait.png", "   ", tmp_path / "o.mp4")
