"""Bad input where it enters (the HTTP payload, the client/CLI/batch reader): odd portraits pass, a decompression bomb
and a 1x1 image are refused from the header alone, audio that is empty, undecodable, NaN or 20 minutes long gets our
own message naming the input and what to do; odd but valid audio passes."""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from longcat_avatar.api_payload import PayloadError, parse_request
from longcat_avatar.client import read_media
from longcat_avatar.errors import InvalidParametersError
from longcat_avatar.media import image_size, portrait_problem
from longcat_avatar.media_checks import portrait_for_comfyui, probe_audio
from pipeline.limits import MAX_PORTRAIT_PIXELS, MAX_TEXT_CHARS, MIN_PORTRAIT_SIDE
from support.bad_media import bomb_png

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ORIENTATION_TAG = 0x0112  # EXIF orientation; 6 = stored rotated, display turned 90 degrees clockwise


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _portraits() -> dict[str, bytes]:
    """Portraits a user may really send: alpha, 16-bit, CMYK, EXIF-rotated, grayscale, WebP kinds, BMP."""
    rgb = Image.open(EXAMPLES / "portrait.png").convert("RGB").resize((90, 120))
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    return {
        "alpha.png": _save(rgb.convert("RGBA"), "PNG"),
        "16bit.png": _save(Image.fromarray(np.full((120, 90), 40000, np.uint16)), "PNG"),
        "cmyk.jpg": _save(rgb.convert("CMYK"), "JPEG"),
        "exif.jpg": _save(rgb.rotate(90, expand=True), "JPEG", exif=exif),
        "gray.png": _save(rgb.convert("L"), "PNG"),
        "lossy.webp": _save(rgb, "WEBP"),
        "lossless.webp": _save(rgb, "WEBP", lossless=True),
        "alpha.webp": _save(rgb.convert("RGBA"), "WEBP"),
        "progressive.jpg": _save(rgb, "JPEG", progressive=True),
        "image.bmp": _save(rgb, "BMP"),
    }


def _wav(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _audios() -> dict[str, bytes]:
    """Odd but valid audio: 8 kHz mono, 96 kHz six channels, clipped, silent."""
    rng = np.random.default_rng(0)
    return {
        "8k-mono": _wav(0.3 * rng.standard_normal(8000).astype(np.float32), 8000),
        "96k-6ch": _wav(0.3 * rng.standard_normal((96000, 6)).astype(np.float32), 96000, "FLOAT"),
        "clipped": _wav(np.clip(3 * rng.standard_normal(16000), -1, 1).astype(np.float32), 16000),
        "silent": _wav(np.zeros(16000, np.float32), 16000),
    }


def _twenty_minutes() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:  # 8-bit 8 kHz: the smallest real file of that length (9.6 MB)
        handle.setnchannels(1)
        handle.setsampwidth(1)
        handle.setframerate(8000)
        handle.writeframes(b"\x80" * 8000 * 20 * 60)
    return buffer.getvalue()


BAD_AUDIO = {
    "empty": (lambda: _wav(np.zeros(0, np.float32), 16000), "holds no sound (0 samples)"),
    "garbage": (lambda: b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4, "could not be decoded as audio"),
    "nan": (lambda: _wav(np.array([0.1, np.nan, 0.2] * 500, np.float32), 16000, "FLOAT"), "NaN"),
    "20 minutes": (_twenty_minutes, "lasts 20.0 minutes; the longest is 10 minutes: split it"),
}


@pytest.mark.parametrize("name", list(_portraits()))
def test_real_portrait_kinds_pass_and_their_size_is_read_from_the_header(name: str) -> None:
    data = _portraits()[name]
    assert image_size(data) == Image.open(io.BytesIO(data)).size
    assert portrait_problem(data) is None


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    bomb = bomb_png()
    assert len(bomb) < 2_000_000 and MAX_PORTRAIT_PIXELS < 20000 * 20000
    assert image_size(bomb) == (20000, 20000)
    problem = portrait_problem(bomb)
    assert problem is not None and "400 megapixels" in problem and "scale it down" in problem


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_save(Image.new("RGB", (1, 1)), "PNG"), f"is 1x1 pixels; give a portrait at least {MIN_PORTRAIT_SIDE}"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "damaged or unknown image header"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 30, "damaged or unknown image header"),
    ],
    ids=["1x1", "png-header", "jpeg-header"],
)
def test_unusable_portraits_say_why(data: bytes, words: str) -> None:
    assert words in (portrait_problem(data) or "")


@pytest.mark.parametrize("name", list(_audios()))
def test_odd_but_valid_audio_passes(name: str) -> None:
    info = probe_audio(_audios()[name])
    assert info.samples > 0 and info.sample_rate in (8000, 16000, 96000)
    assert info.channels == (6 if name == "96k-6ch" else 1)


def _body(**changes: object) -> dict[str, object]:
    image = base64.b64encode((EXAMPLES / "portrait.png").read_bytes()).decode()
    audio = base64.b64encode((EXAMPLES / "speech.wav").read_bytes()).decode()
    return {"reference_image": image, "audio": audio, **changes}


@pytest.mark.parametrize("name", list(BAD_AUDIO))
def test_bad_audio_gets_our_message_everywhere_it_enters(name: str, tmp_path: Path) -> None:
    make, words = BAD_AUDIO[name]
    data = make()
    with pytest.raises(PayloadError) as refused:
        parse_request(_body(audio=base64.b64encode(data).decode()))
    assert refused.value.status == 422 and refused.value.reason.startswith("'audio' ") and words in refused.value.reason
    assert "export it again" in refused.value.reason or "split it" in refused.value.reason
    path = tmp_path / "speech.wav"
    path.write_bytes(data)
    with pytest.raises(InvalidParametersError) as invalid:
        read_media(path, "audio")
    assert f"audio file {path} " in str(invalid.value) and words in str(invalid.value)


@pytest.mark.parametrize("data", [bomb_png(), _save(Image.new("RGB", (1, 1)), "PNG")], ids=["bomb", "1x1"])
def test_bad_portraits_are_refused_by_the_payload_and_the_client(data: bytes, tmp_path: Path) -> None:
    with pytest.raises(PayloadError) as refused:
        parse_request(_body(reference_image=base64.b64encode(data).decode()))
    assert refused.value.status == 422 and refused.value.reason.startswith("'reference_image' is ")
    path = tmp_path / "face.png"
    path.write_bytes(data)
    with pytest.raises(InvalidParametersError) as invalid:
        read_media(path, "image")
    assert f"image file {path} is " in str(invalid.value)


def test_a_long_prompt_is_accepted() -> None:
    prompt = "A person talks calmly. " * (10_000 // 23 + 1)
    assert len(prompt) >= 10_000
    assert parse_request(_body(prompt=prompt)).params.prompt == prompt  # the text encoder keeps its first 512 tokens
    assert MAX_TEXT_CHARS >= 10_000  # and a text to speak may be as long


def test_a_16_bit_grayscale_png_is_sent_as_8_bits() -> None:
    """ComfyUI's LoadImage turns a 16-bit grayscale PNG white (convert("RGB") clips I;16); we send 8 bits instead."""
    portraits = _portraits()
    mended = portrait_for_comfyui(portraits["16bit.png"])
    assert Image.open(io.BytesIO(portraits["16bit.png"])).convert("RGB").getpixel((0, 0)) == (255, 255, 255)
    assert Image.open(io.BytesIO(mended)).convert("RGB").getpixel((0, 0)) == (40000 >> 8,) * 3
    assert all(portrait_for_comfyui(data) is data for name, data in portraits.items() if name != "16bit.png")
