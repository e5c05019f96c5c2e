"""The HTTP endpoint's request: JSON fields, base64 media, formats and ranges, each refused with a status and reason.

POST /longcat/avatar takes {reference_image: base64, audio: base64 | text (+ voice), num_inference_steps,
guidance_scale (audio), text_guidance_scale, fps, seed, version, resolution, prompt, distilled, separate_vocals, wait,
wait_timeout_s (at most the server's limit)}.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
import re
from dataclasses import dataclass
from typing import Any

from .media import audio_extension, image_extension, portrait_problem
from .media_checks import audio_problem, portrait_for_comfyui
from .params import GenerationParams, validate
from .shared import limits

AVATAR_ROUTE = "/longcat/avatar"  # the endpoint on the ComfyUI server (routes/avatar.py); GET {route}/{job_id} polls
MAX_PAYLOAD_ENV = "LONGCAT_AVATAR_MAX_PAYLOAD_MB"
DEFAULT_MAX_PAYLOAD_MB = 64.0  # base64 of a large portrait (~10 MB) and a few minutes of WAV (~40 MB), with headroom
PARAM_FIELDS = {
    "num_inference_steps": "steps",
    "guidance_scale": "guidance",
    "text_guidance_scale": "text_guidance",
    "fps": "fps",
    "seed": "seed",
    "version": "version",
    "resolution": "resolution",
    "prompt": "prompt",
    "distilled": "distilled",
    "separate_vocals": "separate_vocals",
}
OTHER_FIELDS = ("reference_image", "audio", "text", "voice", "wait", "wait_timeout_s")
DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


class PayloadError(ValueError):
    """A refused request: the HTTP status and the reason sent back."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class AvatarRequest:
    """A validated request."""

    image: bytes
    image_ext: str
    audio: bytes | None
    audio_ext: str | None
    text: str | None
    voice: str
    params: GenerationParams
    wait: bool
    wait_timeout_s: float | None = None  # a shorter wait than the server's limit, in seconds


def max_payload_bytes() -> int:
    """The size limit of a request body: $LONGCAT_AVATAR_MAX_PAYLOAD_MB megabytes (default 64)."""
    try:
        megabytes = float(os.environ.get(MAX_PAYLOAD_ENV, DEFAULT_MAX_PAYLOAD_MB))
    except ValueError:
        megabytes = DEFAULT_MAX_PAYLOAD_MB
    return int(megabytes * 1024 * 1024)


def decode_base64(field: str, value: Any) -> bytes:
    """Strict base64 (a `data:...;base64,` prefix is allowed); 400 for anything else."""
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(400, f"'{field}' must be a non-empty base64 string")
    text = DATA_URL.sub("", value.strip(), count=1)
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise PayloadError(400, f"'{field}' is not valid base64 ({error})") from error
    if not data:
        raise PayloadError(400, f"'{field}' decodes to no bytes")
    return data


def _media(body: dict[str, Any]) -> tuple[bytes, str, bytes | None, str | None, str | None]:
    """The portrait and the audio (or text) of a request, with their formats."""
    if "reference_image" not in body:
        raise PayloadError(400, "'reference_image' (base64 image) is required")
    image = decode_base64("reference_image", body["reference_image"])
    image_ext = image_extension(image)
    if image_ext is None:
        raise PayloadError(415, "'reference_image' is not a PNG, JPEG, WebP or BMP image")
    problem = portrait_problem(image)
    if problem:
        raise PayloadError(422, f"'reference_image' {problem}")
    image = portrait_for_comfyui(image)
    has_audio, has_text = body.get("audio") is not None, body.get("text") is not None
    if has_audio == has_text:
        raise PayloadError(400, "give exactly one of 'audio' (base64 speech) and 'text' (to speak with espeak-ng)")
    if has_text:
        text = body["text"]
        if not isinstance(text, str) or not text.strip() or len(text) > limits.MAX_TEXT_CHARS:
            raise PayloadError(422, f"'text' must be 1-{limits.MAX_TEXT_CHARS} characters of text")
        return image, image_ext, None, None, text
    audio = decode_base64("audio", body["audio"])
    audio_ext = audio_extension(audio)
    if audio_ext is None:
        raise PayloadError(415, "'audio' is not a WAV, FLAC, MP3, Ogg, M4A or WebM file")
    problem = audio_problem(audio)
    if problem:
        raise PayloadError(422, f"'audio' {problem}")
    return image, image_ext, audio, audio_ext, None


def parse_request(body: Any) -> AvatarRequest:
    """Validate a decoded JSON body; raises PayloadError (400, 415 or 422) with the reason."""
    if not isinstance(body, dict):
        raise PayloadError(400, "the body must be a JSON object")
    unknown = [key for key in body if key not in PARAM_FIELDS and key not in OTHER_FIELDS]
    if unknown:
        hints = [f"'{k}'" + _suggest(k) for k in unknown]
        raise PayloadError(422, f"unknown field(s): {', '.join(hints)}")
    image, image_ext, audio, audio_ext, text = _media(body)
    values = {name: body[key] for key, name in PARAM_FIELDS.items() if body.get(key) is not None}
    params = GenerationParams(**values)
    problems = validate(params)
    if problems:
        raise PayloadError(422, "; ".join(problems))
    voice, wait = body.get("voice", "en-us"), body.get("wait", True)
    if not isinstance(voice, str) or not re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9_+/-]{0,39}", voice
    ):  # espeak-ng voice names
        raise PayloadError(422, f"'voice' must be an espeak-ng voice name like en-us or de+f3, got {voice!r}")
    if not isinstance(wait, bool):
        raise PayloadError(422, f"'wait' must be true or false, got {wait!r}")
    timeout = body.get("wait_timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise PayloadError(422, f"'wait_timeout_s' must be a positive number of seconds, got {timeout!r}")
    return AvatarRequest(image, image_ext, audio, audio_ext, text, voice, params.with_seed(), wait, timeout)


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, [*PARAM_FIELDS, *OTHER_FIELDS], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
