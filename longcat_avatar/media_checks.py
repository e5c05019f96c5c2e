"""Media checked (and mended) before they are sent to ComfyUI. Audio: decodable, holding sound, finite, not too long;
PyAV (a pack requirement, which ComfyUI's LoadAudio also uses) decodes it once without keeping the samples.
Portraits: a 16-bit grayscale PNG, which ComfyUI's LoadImage turns white, is re-encoded as 8 bits (Pillow)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from .shared import limits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_DEPTH_AND_COLOUR = slice(24, 26)  # IHDR: bit depth, then colour type (0 = grayscale)

FIX_HINT = "export it again as WAV, FLAC or MP3"


@dataclass(frozen=True)
class AudioInfo:
    """What decoding found."""

    sample_rate: int
    channels: int
    samples: int

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.samples / self.sample_rate if self.sample_rate else 0.0


def probe_audio(data: bytes) -> AudioInfo:
    """Decode the first audio stream; ValueError with a sentence (to follow the input's name) when it is unusable."""
    import av  # PyAV: only where audio is checked, so the client's light imports stay light

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise ValueError(f"holds no audio stream: {FIX_HINT}")
            info = _decode(container, container.streams.audio[0])
    except av.FFmpegError as error:
        raise ValueError(f"could not be decoded as audio ({type(error).__name__}): it is damaged or not sound; "
                         f"{FIX_HINT}") from error  # fmt: skip
    if info.samples == 0:
        raise ValueError(f"holds no sound (0 samples): {FIX_HINT}")
    if info.duration_s > limits.MAX_AUDIO_S:
        raise ValueError(
            f"lasts {info.duration_s / 60:.1f} minutes; the longest is {limits.MAX_AUDIO_S / 60:g} minutes: split it and "
            "make one video per part"
        )
    return info


def _decode(container: Any, stream: Any) -> AudioInfo:
    """Count the samples of every frame and check they are finite."""
    import numpy as np  # PyAV's frames are numpy arrays: imported with PyAV, never by the client's light imports

    samples, rate, channels = 0, stream.rate or 0, stream.channels or 0
    for frame in container.decode(stream):
        array = frame.to_ndarray()
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"contains NaN or infinite samples (a broken float file): {FIX_HINT}")
        samples += frame.samples
        rate, channels = frame.sample_rate or rate, len(frame.layout.channels) or channels
    return AudioInfo(rate, channels, samples)


def audio_problem(data: bytes) -> str | None:
    """Why an audio file cannot be used, or None (also None when PyAV is missing: the server will then judge)."""
    try:
        probe_audio(data)
    except ImportError:
        return None
    except ValueError as error:
        return str(error)
    return None


def portrait_for_comfyui(data: bytes) -> bytes:
    """The portrait as ComfyUI's LoadImage reads it right: a 16-bit grayscale PNG becomes 8-bit, others pass as-is."""
    if not data.startswith(PNG_SIGNATURE) or data[PNG_DEPTH_AND_COLOUR] != bytes((16, 0)):
        return data
    import numpy as np
    from PIL import Image  # Pillow and numpy: only for the one kind that needs them

    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image, dtype=np.uint16)  # mode I;16: one 16-bit value per pixel
    buffer = io.BytesIO()
    Image.fromarray((pixels >> 8).astype(np.uint8), mode="L").save(buffer, format="PNG")  # the high byte: 8 bits
    return buffer.getvalue()
