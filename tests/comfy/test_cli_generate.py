"""The Python client and the command line against a real ComfyUI with tiny models: generate, batch with bad jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from longcat_avatar import AvatarGenerator, GenerationError
from longcat_avatar.progress import ProgressEvent
from support.avatar_graph import ensure_tiny_models, wav_duration
from support.comfy_server import REPO_ROOT, ComfyServer
from support.video_probe import probe

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

EXAMPLES = REPO_ROOT / "examples"
SIZE = (64, 96)  # width, height: tiny latents, seconds per run on two CPU cores
RESOLUTION = f"{SIZE[0]}x{SIZE[1]}"
SEED = 1234


@pytest.fixture(scope="module")
def server(comfy_server: ComfyServer) -> ComfyServer:
    """The session server with the tiny official model layouts in its models folder."""
    ensure_tiny_models(comfy_server.models_dir)
    return comfy_server


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m longcat_avatar ...` from the repository folder."""
    command = [sys.executable, "-m", "longcat_avatar", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)


def assert_talking_video(path: Path, audio_s: float, fps: float) -> None:
    """H.264 + AAC at the test size and fps, as many frames as the speech lasts, the speech kept whole."""
    info = probe(path)
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.width, info.height) == SIZE
    assert info.fps == fps
    assert abs(info.frame_count - audio_s * fps) <= 1, (info.frame_count, audio_s)
    assert abs(info.audio_duration - audio_s) <= 1 / fps, (info.audio_duration, audio_s)


def test_client_generate_reports_progress_and_downloads_the_mp4(server: ComfyServer, tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    result = AvatarGenerator(server.url).generate(
        EXAMPLES / "portrait.png", EXAMPLES / "speech.wav", tmp_path / "client.mp4", seed=SEED,
        resolution=RESOLUTION, on_progress=events.append,
    )  # fmt: skip
    speech_s = wav_duration(EXAMPLES / "speech.wav")
    assert_talking_video(result.output, speech_s, 25.0)
    assert (result.seed, result.fps) == (SEED, 25.0)
    assert result.duration_s == pytest.approx(speech_s, abs=1 / 25)
    assert result.server_file.startswith("LongCatAvatar/") and result.server_file.endswith(".mp4")
    embedded = json.loads(probe(result.output).tags["prompt"])  # the workflow the server ran
    sampler = next(n for n in embedded.values() if n["class_type"] == "LongCatAvatarSampler")
    assert sampler["inputs"]["seed"] == SEED
    kinds = [e.kind for e in events]
    assert kinds[0] == "queued" and kinds[-1] == "done" and kinds.count("done") == 1
    if "cached" not in kinds:  # a first run (not served from ComfyUI's cache) reports every node and step
        ran = {e.class_type for e in events if e.kind == "node"}
        assert {"LoadImage", "LoadAudio", "LongCatAvatarSampler", "LongCatAvatarVideoCombine"} <= ran
        steps = [e.value for e in events if e.kind == "progress" and e.class_type == "LongCatAvatarSampler"]
        assert steps == list(range(1, 9))  # the v1.5 distilled workflow: 8 steps, one segment


def test_cli_generate(server: ComfyServer, tmp_path: Path) -> None:
    output = tmp_path / "nested" / "cli.mp4"
    result = cli(
        "generate", "--image", str(EXAMPLES / "portrait.png"), "--audio", str(EXAMPLES / "speech.wav"),
        "--output", str(output), "--seed", str(SEED), "--resolution", RESOLUTION, "--server", server.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"Wrote {output}" in result.stdout and f"seed {SEED}" in result.stdout and "25 fps" in result.stdout
    assert_talking_video(output, wav_duration(EXAMPLES / "speech.wav"), 25.0)


def test_cli_batch_keeps_going_past_bad_jobs(server: ComfyServer, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)  # a WAV header, then garbage
    too_slow = tmp_path / "500hz.wav"  # decodes, so it is sent; the audio encoder refuses 500 samples per second
    with wave.open(str(too_slow), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(500)
        handle.writeframes(b"\0\1" * 500)
    job = {"referenceImage": str(EXAMPLES / "portrait.png"), "audio": str(EXAMPLES / "speech.wav"),
           "seed": SEED, "resolution": RESOLUTION}  # fmt: skip
    config = tmp_path / "jobs.json"
    config.write_text(
        json.dumps(
            [
                {**job, "output": "out/first.mp4"},
                {**job, "output": "out/invalid.mp4", "numInferenceSteps": 500},
                {**job, "output": "out/16fps.mp4", "fps": 16},  # ComfyUI's cache: only Video Combine runs again
                {**job, "output": "out/broken.mp4", "audio": str(broken)},
                {**job, "output": "out/failing.mp4", "audio": str(too_slow)},
            ]
        )
    )
    result = cli("batch", "--config", str(config), "--server", server.url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "job 2 is invalid: steps must be between 1 and 100, got 500" in result.stderr
    assert f"job 4 is invalid: audio file {broken} could not be decoded as audio" in result.stderr  # our words
    summary = result.stdout[result.stdout.index("Batch summary:") :]
    assert "job 1: ok" in summary and "job 2: invalid" in summary and "job 3: ok" in summary
    assert "job 4: invalid" in summary and "job 5: failed" in summary and "LongCatAvatarAudioEncode" in summary
    assert "2 ok, 1 failed, 2 invalid" in summary
    speech_s = wav_duration(EXAMPLES / "speech.wav")
    assert_talking_video(tmp_path / "out" / "first.mp4", speech_s, 25.0)
    assert_talking_video(tmp_path / "out" / "16fps.mp4", speech_s, 16.0)
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name not in ("first.mp4", "16fps.mp4")]


def test_a_refused_workflow_is_a_readable_error(server: ComfyServer, tmp_path: Path) -> None:
    workflow = json.loads((REPO_ROOT / "workflows" / "longcat_avatar_v15_single_distilled_api.json").read_text())
    loader = next(n for n in workflow.values() if n["class_type"] == "LongCatAvatarModelLoader")
    loader["inputs"]["model"] = "longcat/LongCat-Video-Avatar-1.5/no_such_model"
    with pytest.raises(Exception, match="refused the workflow") as caught:
        AvatarGenerator(server.url, workflow=workflow).generate(
            EXAMPLES / "portrait.png", EXAMPLES / "speech.wav", tmp_path / "x.mp4", resolution=RESOLUTION
        )
    assert "LongCatAvatarModelLoader" in str(caught.value) and not isinstance(caught.value, GenerationError)
    assert not (tmp_path / "x.mp4").exists()
