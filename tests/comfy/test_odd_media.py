"""Odd but real media on a real ComfyUI with tiny models: through the HTTP route a CMYK, EXIF-rotated portrait with
96 kHz six-channel clipped audio and a 10,000-character prompt makes a video; in a graph, portraits with alpha, in
grayscale, CMYK or EXIF-rotated encode upright, odd audio encodes, and a 1x1 portrait or NaN audio stop with our
message."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import soundfile
from PIL import Image

from support.avatar_graph import ensure_tiny_models
from support.avatar_requests import TINY, post
from support.comfy_server import ComfyServer
from support.video_probe import probe

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

ORIENTATION_TAG = 0x0112  # EXIF orientation; 6: stored turned, shown after a 90-degree clockwise turn
RED, BLUE = (220, 30, 30), (30, 30, 220)
VAE = "longcat/LongCat-Video/vae"
WHISPER = "longcat/LongCat-Video-Avatar-1.5/whisper-large-v3"


@pytest.fixture(scope="module")
def server(comfy_server: ComfyServer) -> ComfyServer:
    """The session server with the tiny official model layouts."""
    ensure_tiny_models(comfy_server.models_dir)
    return comfy_server


def upright() -> Image.Image:
    """90x120: red top half, blue bottom half, so a portrait shown upside down or sideways is obvious."""
    image = Image.new("RGB", (90, 120), BLUE)
    image.paste(RED, (0, 0, 90, 60))
    return image


def encoded(image: Image.Image, fmt: str, exif_turned: bool = False) -> bytes:
    """The image as a file; exif_turned stores it turned with an orientation tag that turns it back."""
    exif = Image.Exif()
    if exif_turned:
        image = image.rotate(90, expand=True)
        exif[ORIENTATION_TAG] = 6
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, exif=exif)
    return buffer.getvalue()


def wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def odd_audio() -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    return {
        "8k-mono": wav(0.3 * rng.standard_normal(8000).astype(np.float32), 8000),
        "96k-6ch-clipped": wav(np.clip(3 * rng.standard_normal((96000, 6)), -1, 1).astype(np.float32), 96000),
        "silent": wav(np.zeros(16000, np.float32), 16000),
    }


def upload(server: ComfyServer, data: bytes, name: str, tmp_path: Path) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return server.upload(path, subfolder="odd_media")


def test_odd_media_through_the_route_make_a_video(server: ComfyServer, tmp_path: Path) -> None:
    portrait = encoded(upright().convert("CMYK"), "JPEG", exif_turned=True)
    audio = odd_audio()["96k-6ch-clipped"]
    body = {"reference_image": base64.b64encode(portrait).decode(), "audio": base64.b64encode(audio).decode(),
            "prompt": "A person talks calmly. " * 440, "seed": 5, **TINY}  # fmt: skip
    assert len(body["prompt"]) >= 10_000
    answer = post(server, body)
    assert answer.status_code == 200, answer.text
    path = tmp_path / "odd.mp4"
    path.write_bytes(base64.b64decode(answer.json()["video"]))
    info = probe(path)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 32, 32)
    assert abs(info.audio_duration - 1.0) <= 1 / 25  # the one second of audio, kept whole


def _portrait_branch(prompt: dict[str, Any], name: str, image: str) -> None:
    """LoadImage -> Portrait Encode (32x32) -> PreviewImage of the cropped portrait."""
    prompt[f"{name}-load"] = {"class_type": "LoadImage", "inputs": {"image": image}}
    prompt[f"{name}-encode"] = {"class_type": "LongCatAvatarPortraitEncode", "inputs": {
        "vae": ["vae", 0], "image": [f"{name}-load", 0], "resolution": "custom", "width": 32, "height": 32}}  # fmt: skip
    prompt[f"{name}-preview"] = {"class_type": "PreviewImage", "inputs": {"images": [f"{name}-encode", 1]}}


def _audio_branch(prompt: dict[str, Any], name: str, audio: str) -> None:
    """LoadAudio -> Audio Encode -> PreviewAudio of the audio it passes on."""
    prompt[f"{name}-load"] = {"class_type": "LoadAudio", "inputs": {"audio": audio}}
    prompt[f"{name}-encode"] = {"class_type": "LongCatAvatarAudioEncode", "inputs": {
        "audio_encoder": ["whisper", 0], "audio": [f"{name}-load", 0], "mode": "para", "speaker_boxes": "",
        "extra_people_boxes": "", "seed": 0}}  # fmt: skip
    prompt[f"{name}-preview"] = {"class_type": "PreviewAudio", "inputs": {"audio": [f"{name}-encode", 1]}}


def _loaders() -> dict[str, Any]:
    return {
        "vae": {"class_type": "LongCatAvatarVAELoader", "inputs": {"vae": VAE, "dtype": "auto"}},
        "whisper": {
            "class_type": "LongCatAvatarAudioEncoderLoader",
            "inputs": {"audio_encoder": WHISPER, "dtype": "fp32"},
        },  # fmt: skip
    }


def _cropped(server: ComfyServer, run: Any, name: str) -> np.ndarray:
    item = run.outputs(f"{name}-preview")["images"][0]
    params = {"filename": item["filename"], "subfolder": item["subfolder"], "type": item["type"]}
    data = requests.get(f"{server.url}/view", params=params, timeout=60).content
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int32)


def test_odd_portraits_and_audio_encode_in_a_graph(server: ComfyServer, tmp_path: Path) -> None:
    portraits = {
        "alpha": encoded(upright().convert("RGBA"), "PNG"),
        "gray": encoded(upright().convert("L"), "PNG"),
        "cmyk": encoded(upright().convert("CMYK"), "JPEG"),
        "exif": encoded(upright(), "JPEG", exif_turned=True),
    }
    prompt = _loaders()
    for name, data in portraits.items():
        _portrait_branch(
            prompt, name, upload(server, data, f"{name}.{'png' if b'PNG' in data[:4] else 'jpg'}", tmp_path)
        )
    for name, data in odd_audio().items():
        _audio_branch(prompt, name, upload(server, data, f"{name}.wav", tmp_path))
    run = server.run(prompt, timeout=900)
    assert run.status == "success", run.error_message()
    for name in ("alpha", "cmyk", "exif"):  # upright: red above, blue below
        cropped = _cropped(server, run, name)
        assert cropped[2].mean(axis=0)[0] > 150 and cropped[-3].mean(axis=0)[2] > 150, name
    gray = _cropped(server, run, "gray")
    assert gray[2].mean() != pytest.approx(gray[-3].mean(), abs=10)  # the two halves stay apart in grayscale


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("1x1", "LongCat Avatar Portrait Encode: the portrait is 1x1 pixels; give a portrait at least 32"),
        ("nan", "contains NaN or infinite samples"),
    ],
)
def test_a_1x1_portrait_or_nan_audio_stops_with_our_message(
    server: ComfyServer, tmp_path: Path, kind: str, words: str
) -> None:
    prompt = _loaders()
    if kind == "1x1":
        _portrait_branch(prompt, "tiny", upload(server, encoded(Image.new("RGB", (1, 1)), "PNG"), "1x1.png", tmp_path))
        del prompt["whisper"]
    else:
        nan = wav(np.array([0.1, np.nan, 0.2] * 2000, np.float32), 16000)
        _audio_branch(prompt, "nan", upload(server, nan, "nan.wav", tmp_path))
        del prompt["vae"]
    run = server.run(prompt, timeout=900)
    assert run.status == "error" and words in run.error_message(), run.error_message()
