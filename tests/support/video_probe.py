"""ffprobe an MP4 into plain numbers that tests can assert on (codecs, size, fps, frame count, durations, tags)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any


@dataclass
class ProbedVideo:
    """What ffprobe reports for one file (first video and first audio stream)."""

    video_codec: str
    pix_fmt: str
    width: int
    height: int
    fps: Fraction
    frame_count: int  # decoded (counted) frames, not the container's claim
    video_duration: float
    audio_codec: str | None = None
    audio_duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


def ffprobe_path() -> str:
    """Debian's ffprobe."""
    path = shutil.which("ffprobe")
    if path is None:
        raise RuntimeError("ffprobe is not installed (apt-get install ffmpeg)")
    return path


def probe(path: str | Path) -> ProbedVideo:
    """Run ffprobe (counting frames) on `path`."""
    command = [ffprobe_path(), "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", str(path)]  # fmt: skip
    info: dict[str, Any] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next((s for s in info["streams"] if s["codec_type"] == "audio"), None)
    result = ProbedVideo(
        video_codec=video["codec_name"],
        pix_fmt=video.get("pix_fmt", ""),
        width=int(video["width"]),
        height=int(video["height"]),
        fps=Fraction(video["r_frame_rate"]),
        frame_count=int(video["nb_read_frames"]),
        video_duration=float(video["duration"]),
        tags=dict(info.get("format", {}).get("tags", {})),
    )
    if audio is not None:
        result.audio_codec = audio["codec_name"]
        result.audio_duration = float(audio["duration"])
        result.sample_rate = int(audio["sample_rate"])
        result.channels = int(audio["channels"])
    return result


def decode_frames(path: str | Path) -> Any:
    """Every video frame of `path` as a uint8 numpy array [N, H, W, 3] (through PyAV)."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def decode_audio(path: str | Path) -> tuple[Any, int]:
    """The first audio stream of `path` as float32 [channels, samples] and its rate (through PyAV)."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray() for frame in container.decode(stream)]
        return np.concatenate(chunks, axis=1).astype(np.float32), int(stream.sample_rate)
