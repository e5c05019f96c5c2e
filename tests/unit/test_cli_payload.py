"""The HTTP endpoint's request validation: every refusal has the right status and a reason naming the field."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from longcat_avatar.api_payload import (
    DEFAULT_MAX_PAYLOAD_MB,
    MAX_PAYLOAD_ENV,
    PayloadError,
    max_payload_bytes,
    parse_request,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IMAGE = base64.b64encode((EXAMPLES / "portrait.png").read_bytes()).decode()
AUDIO = base64.b64encode((EXAMPLES / "speech.wav").read_bytes()).decode()


def _refused(body: object) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        parse_request(body)
    return caught.value


def test_a_valid_request() -> None:
    request = parse_request(
        {
            "reference_image": IMAGE,
            "audio": AUDIO,
            "num_inference_steps": 30,
            "guidance_scale": 4.0,
            "fps": 25,
            "seed": 11,
            "text_guidance_scale": 3.5,
            "resolution": "480p",
        }  # fmt: skip
    )
    assert request.image == (EXAMPLES / "portrait.png").read_bytes()
    assert request.audio == (EXAMPLES / "speech.wav").read_bytes()
    assert (request.image_ext, request.audio_ext, request.text, request.wait) == (".png", ".wav", None, True)
    params = request.params
    assert (params.steps, params.guidance, params.text_guidance, params.fps, params.seed) == (30, 4.0, 3.5, 25, 11)


def test_optional_values_default_and_the_seed_is_drawn() -> None:
    request = parse_request({"reference_image": IMAGE, "audio": "data:audio/wav;base64," + AUDIO})
    assert request.params.steps is None and request.params.fps is None
    assert isinstance(request.params.seed, int)
    assert request.audio_ext == ".wav"


def test_text_instead_of_audio() -> None:
    request = parse_request({"reference_image": IMAGE, "text": "Hello there", "voice": "de+f3", "wait": False})
    assert (request.audio, request.text, request.voice, request.wait) == (None, "Hello there", "de+f3", False)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ([], 400, "JSON object"),
        ({"audio": AUDIO}, 400, "'reference_image'"),
        ({"reference_image": "not base64!!", "audio": AUDIO}, 400, "not valid base64"),
        ({"reference_image": IMAGE, "audio": "QUJD$"}, 400, "not valid base64"),
        ({"reference_image": 12, "audio": AUDIO}, 400, "base64 string"),
        ({"reference_image": IMAGE}, 400, "exactly one of 'audio'"),
        ({"reference_image": IMAGE, "audio": AUDIO, "text": "hi"}, 400, "exactly one of 'audio'"),
        ({"reference_image": AUDIO, "audio": AUDIO}, 415, "PNG, JPEG"),
        ({"reference_image": IMAGE, "audio": IMAGE}, 415, "WAV, FLAC"),
        ({"reference_image": IMAGE, "audio": AUDIO, "num_inference_steps": 0}, 422, "steps must be between 1 and 100"),
        ({"reference_image": IMAGE, "audio": AUDIO, "guidance_scale": 12}, 422, "guidance must be between 1 and 10"),
        ({"reference_image": IMAGE, "audio": AUDIO, "fps": 60}, 422, "fps must be between 15 and 30"),
        ({"reference_image": IMAGE, "audio": AUDIO, "seed": -1}, 422, "seed"),
        ({"reference_image": IMAGE, "audio": AUDIO, "version": "2"}, 422, "version"),
        ({"reference_image": IMAGE, "audio": AUDIO, "version": "1.0", "distilled": "on"}, 422, "v1.0 has none"),
        ({"reference_image": IMAGE, "audio": AUDIO, "distilled": "fast"}, 422, "one of auto, on, off"),
        ({"reference_image": IMAGE, "audio": AUDIO, "guidance": 3}, 422, "did you mean 'guidance_scale'"),
        ({"reference_image": IMAGE, "text": "hi", "voice": "--help"}, 422, "voice"),
        ({"reference_image": IMAGE, "text": "  "}, 422, "'text'"),
        ({"reference_image": IMAGE, "audio": AUDIO, "wait": "yes"}, 422, "'wait'"),
    ],
)
def test_refusals(body: object, status: int, words: str) -> None:
    error = _refused(body)
    assert error.status == status
    assert words in error.reason


def test_size_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_PAYLOAD_ENV, raising=False)
    assert max_payload_bytes() == int(DEFAULT_MAX_PAYLOAD_MB * 1024 * 1024)
    monkeypatch.setenv(MAX_PAYLOAD_ENV, "0.5")
    assert max_payload_bytes() == 512 * 1024
    monkeypatch.setenv(MAX_PAYLOAD_ENV, "lots")
    assert max_payload_bytes() == int(DEFAULT_MAX_PAYLOAD_MB * 1024 * 1024)
