"""POST /longcat/avatar on a real ComfyUI with tiny models: the video for a valid request (waiting or through the
job route), 4xx with a reason for every kind of bad request, and files only in ComfyUI's input/output folders."""

from __future__ import annotations

import base64
import io
import time
import wave
from pathlib import Path

import pytest
import requests

from longcat_avatar.api_payload import DEFAULT_MAX_PAYLOAD_MB
from support.avatar_graph import ensure_tiny_models, wav_duration
from support.bad_media import bomb_png
from support.comfy_server import REPO_ROOT, ComfyServer
from support.video_probe import probe

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

EXAMPLES = REPO_ROOT / "examples"
IMAGE = base64.b64encode((EXAMPLES / "portrait.png").read_bytes()).decode()
AUDIO = base64.b64encode((EXAMPLES / "speech.wav").read_bytes()).decode()
VALID = {"reference_image": IMAGE, "audio": AUDIO, "seed": 77, "fps": 25, "resolution": "64x96"}
ROUTE = "/longcat/avatar"
BROKEN_WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4  # looks like a WAV, decodes to nothing
ALLOWED_TOP = {"input", "output", "temp", "user", "models", "custom_nodes", "server.log"}  # what ComfyUI itself owns


@pytest.fixture(scope="module")
def server(comfy_server: ComfyServer) -> ComfyServer:
    """The session server with the tiny official model layouts."""
    ensure_tiny_models(comfy_server.models_dir)
    return comfy_server


def _files(base: Path) -> set[Path]:
    return {p.relative_to(base) for p in base.rglob("*") if p.is_file() and "models" not in p.relative_to(base).parts}


def _post(server: ComfyServer, body: object, **kwargs: object) -> requests.Response:
    return requests.post(f"{server.url}{ROUTE}", json=body, timeout=900, **kwargs)  # type: ignore[arg-type]


def _check_video(answer: dict, tmp_path: Path) -> None:
    speech_s = wav_duration(EXAMPLES / "speech.wav")
    path = tmp_path / "answer.mp4"
    path.write_bytes(base64.b64decode(answer["video"]))
    info = probe(path)
    assert (info.video_codec, info.audio_codec, info.width, info.height, info.fps) == ("h264", "aac", 64, 96, 25)
    assert abs(info.audio_duration - speech_s) <= 1 / 25
    assert (answer["seed"], answer["fps"]) == (77, 25)
    assert answer["duration_s"] == pytest.approx(info.video_duration, abs=1e-3)
    assert answer["filename"].startswith("longcat_avatar_api/")


def test_valid_request_answers_the_video(server: ComfyServer, tmp_path: Path) -> None:
    before = _files(server.base_dir)
    response = _post(server, VALID)
    assert response.status_code == 200, response.text
    answer = response.json()
    _check_video(answer, tmp_path)
    assert (server.output_dir / answer["filename"]).is_file()
    new = _files(server.base_dir) - before
    assert all(p.parts[0] in ALLOWED_TOP for p in new), new
    assert not [p for p in new if p.parts[0] == "input"]  # inputs are removed once the job ends
    assert not list((server.input_dir / "longcat_avatar_api").iterdir())


def test_wait_false_gives_a_job_to_poll(server: ComfyServer, tmp_path: Path) -> None:
    response = _post(server, {**VALID, "wait": False})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status_url"] == f"{ROUTE}/{job['job_id']}"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        state = requests.get(f"{server.url}{job['status_url']}", timeout=60).json()
        assert state["status"] in ("queued", "running", "success"), state
        if state["status"] == "success":
            break
        time.sleep(0.5)
    _check_video(state, tmp_path)
    assert requests.get(f"{server.url}{ROUTE}/no-such-job", timeout=60).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"reference_image": "%%% not base64 %%%"}, 400, "'reference_image' is not valid base64"),
        ({"audio": "QUJD!"}, 400, "'audio' is not valid base64"),
        ({"reference_image": base64.b64encode(b"GIF89a tiny").decode()}, 415, "PNG, JPEG, WebP or BMP"),
        ({"audio": base64.b64encode(b"%PDF-1.7 not audio").decode()}, 415, "WAV, FLAC, MP3"),
        ({"audio": base64.b64encode(BROKEN_WAV).decode()}, 422, "'audio' could not be decoded as audio"),
        ({"reference_image": base64.b64encode(bomb_png()).decode()}, 422, "(400 megapixels); the limit is"),
        ({"num_inference_steps": 101}, 422, "steps must be between 1 and 100, got 101"),
        ({"guidance_scale": 0.5}, 422, "guidance must be between 1 and 10, got 0.5"),
        ({"fps": 12}, 422, "fps must be between 15 and 30, got 12"),
        ({"resolution": "100x100"}, 422, "multiples of 16"),
        ({"guidence_scale": 3}, 422, "did you mean 'guidance_scale'"),
        ({"audio": None}, 400, "exactly one of 'audio'"),
        ({"audio": None, "text": "Hello", "voice": "qqq"}, 422, "espeak-ng has no voice 'qqq'"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(server: ComfyServer, change: dict, status: int, words: str) -> None:
    before = _files(server.base_dir)
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    response = _post(server, body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert _files(server.base_dir) == before  # nothing written, nothing left behind


def test_body_that_is_not_json(server: ComfyServer) -> None:
    response = requests.post(f"{server.url}{ROUTE}", data=b"{not json", timeout=60)
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]


@pytest.mark.parametrize("chunked", [False, True])
def test_payload_over_the_limit_is_refused(server: ComfyServer, chunked: bool) -> None:
    limit = int(DEFAULT_MAX_PAYLOAD_MB * 1024 * 1024)  # the server runs without LONGCAT_AVATAR_MAX_PAYLOAD_MB
    size = limit + 1024 * 1024
    if chunked:  # no Content-Length: the server must stop reading at the limit
        data: object = (b" " * (1024 * 1024) for _ in range(size // (1024 * 1024)))
    else:
        data = b" " * size
    response = requests.post(f"{server.url}{ROUTE}", data=data, timeout=120)  # type: ignore[arg-type]
    assert response.status_code == 413
    assert "LONGCAT_AVATAR_MAX_PAYLOAD_MB" in response.json()["error"]


def test_what_the_server_cannot_run_answers_503(server: ComfyServer) -> None:
    body = {k: v for k, v in {**VALID, "version": "1.0", "text": "hello"}.items() if k != "audio"}
    response = _post(server, body)
    assert response.status_code == 503 and "text-to-speech workflow for v1.0" in response.json()["error"]
    whisper = server.models_dir / "longcat" / "LongCat-Video-Avatar-1.5" / "whisper-large-v3"
    hidden = whisper.with_name("whisper-hidden-by-test")
    before = _files(server.base_dir)
    whisper.rename(hidden)
    try:
        missing = _post(server, VALID)
    finally:
        hidden.rename(whisper)
    assert missing.status_code == 503
    reason = missing.json()["error"]
    assert "whisper-large-v3" in reason and "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar-1.5" in reason
    assert _files(server.base_dir) == before


def test_a_failing_generation_answers_500_with_the_node(server: ComfyServer) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:  # decodes fine, but no speech fits in 500 samples per second
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(500)
        handle.writeframes(b"\0\1" * 500)
    before = _files(server.base_dir)
    response = _post(server, {**VALID, "audio": base64.b64encode(buffer.getvalue()).decode()})
    assert response.status_code == 500
    answer = response.json()
    assert answer["status"] == "error" and answer["error"].startswith(
        "the generation failed in LongCatAvatarAudioEncode"
    )
    assert "at least 1000 Hz" in answer["error"]
    assert _files(server.base_dir) == before  # its input files are removed too
