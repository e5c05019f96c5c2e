"""Media sniffing (by bytes, not names) and the MP4 duration read from the movie header, against ffprobe."""

from __future__ import annotations

import io
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from PIL import Image

from longcat_avatar.media import audio_extension, image_extension, mp4_duration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format=fmt)
    return buffer.getvalue()


def _audio_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(1600, dtype=np.float32), 16000, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "ext"), [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("BMP", ".bmp")])
def test_images_are_recognised(fmt: str, ext: str) -> None:
    data = _image_bytes(fmt)
    assert image_extension(data) == ext
    assert audio_extension(data) is None


@pytest.mark.parametrize(("fmt", "ext"), [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg")])
def test_audio_is_recognised(fmt: str, ext: str) -> None:
    data = _audio_bytes(fmt)
    assert audio_extension(data) == ext
    assert image_extension(data) is None


def test_examples_and_garbage() -> None:
    assert image_extension((EXAMPLES / "portrait.png").read_bytes()) == ".png"
    assert audio_extension((EXAMPLES / "speech.wav").read_bytes()) == ".wav"
    for junk in (b"", b"hello world", b"RIFF\x00\x00\x00\x00AVI LIST", b"%PDF-1.7"):
        assert image_extension(junk) is None and audio_extension(junk) is None


def _write_mp4(path: Path, frames: int, fps: int, faststart: bool) -> None:
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(frames):
            image = np.full((32, 32, 3), index * 5 % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("faststart", [False, True])
def test_mp4_duration_matches_ffprobe(tmp_path: Path, faststart: bool) -> None:
    path = tmp_path / "clip.mp4"
    _write_mp4(path, frames=37, fps=25, faststart=faststart)
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    duration = mp4_duration(path.read_bytes())
    assert duration == pytest.approx(float(probed), abs=1e-3)
    assert duration == pytest.approx(37 / 25, abs=1 / 25)


def test_mp4_duration_of_non_mp4_is_none() -> None:
    assert mp4_duration(b"") is None
    assert mp4_duration((EXAMPLES / "speech.wav").read_bytes()) is None
