"""Write frames and a soundtrack to an MP4: H.264 (libx264, yuv420p, CRF) + AAC, with metadata tags, via PyAV;
`save_mp4` makes it appear in its folder whole or not at all."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from .atomic_file import partial_file, publish

AUDIO_CHUNK = 1024  # AAC encodes frames of 1024 samples; feeding that size avoids partial frames in the middle


@dataclass(frozen=True)
class Mp4Settings:
    """Encoder settings: visually near-lossless H.264 that every player and browser decodes."""

    crf: float = 19.0  # x264 CRF 19: visually near-lossless at a moderate size
    preset: str = "medium"  # x264's default speed/size trade-off
    pix_fmt: str = "yuv420p"  # 4:2:0 is what browsers and phones decode
    audio_bitrate: int = 192_000  # transparent AAC for speech and music


def fps_fraction(fps: float) -> Fraction:
    """An exact rational frame rate (29.97 -> 30000/1001, 25.0 -> 25)."""
    return Fraction(fps).limit_denominator(1001)


def frames_to_uint8(frames: Iterable[torch.Tensor]) -> Iterator[np.ndarray]:
    """Yield each IMAGE frame [H, W, C] in [0, 1] as an even-sized RGB uint8 array (edges replicated if odd)."""
    for frame in frames:
        rgb = frame[..., :3] if frame.shape[-1] >= 3 else frame[..., :1].expand(*frame.shape[:-1], 3)
        array = (rgb.detach().to("cpu", torch.float32).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        pad_h, pad_w = array.shape[0] % 2, array.shape[1] % 2  # yuv420p needs even width and height
        if pad_h or pad_w:
            array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        yield np.ascontiguousarray(array)


def write_mp4(
    path: str | Path,
    frames: torch.Tensor | Iterable[torch.Tensor],
    fps: float,
    audio: tuple[np.ndarray, int] | None = None,
    metadata: Mapping[str, str] | None = None,
    settings: Mp4Settings | None = None,
) -> None:
    """Encode IMAGE frames ([N, H, W, C] or [H, W, C] frames) at `fps`, with optional (float32 [C, S], rate) audio."""
    settings = settings or Mp4Settings()
    stream = iter(frames)
    first = next(stream, None)
    if first is None or first.dim() != 3:
        shape = None if first is None else tuple(first.shape)
        raise ValueError(f"frames must be a non-empty [N, H, W, C] IMAGE batch, got a first frame of shape {shape}")
    rate = fps_fraction(fps)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "use_metadata_tags+faststart"}) as output:
        for key, value in (metadata or {}).items():
            output.metadata[key] = value
        height, width = first.shape[0] + first.shape[0] % 2, first.shape[1] + first.shape[1] % 2
        video = output.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, settings.pix_fmt
        video.codec_context.time_base = 1 / rate
        video.options = {"crf": f"{settings.crf:g}", "preset": settings.preset}
        sound = _add_audio_stream(output, audio, settings) if audio is not None else None
        sent = 0
        for index, array in enumerate(frames_to_uint8(itertools.chain([first], stream))):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24").reformat(format=settings.pix_fmt)
            frame.pts = index
            output.mux(video.encode(frame))
            if sound is not None:  # interleave: audio up to the end of this video frame
                sent = _encode_audio(output, sound, audio, sent, round((index + 1) / rate * audio[1]))
        output.mux(video.encode(None))
        if sound is not None:
            _encode_audio(output, sound, audio, sent, audio[0].shape[1])
            output.mux(sound.encode(None))


def _add_audio_stream(output: av.container.OutputContainer, audio: tuple[np.ndarray, int], settings: Mp4Settings):
    samples, rate = audio
    stream = output.add_stream("aac", rate=rate)
    stream.layout = "mono" if samples.shape[0] == 1 else "stereo"
    stream.bit_rate = settings.audio_bitrate
    stream.codec_context.time_base = Fraction(1, rate)
    return stream


def _encode_audio(output, stream, audio: tuple[np.ndarray, int], start: int, stop: int) -> int:
    """Encode samples [start, stop) in AAC-sized chunks; return the new start (a multiple of the chunk size)."""
    samples, rate = audio
    stop = min(stop, samples.shape[1])
    full_end = start + (stop - start) // AUDIO_CHUNK * AUDIO_CHUNK
    end = stop if stop == samples.shape[1] else full_end  # the last, partial chunk only at the very end
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    for offset in range(start, end, AUDIO_CHUNK):
        chunk = np.ascontiguousarray(samples[:, offset : min(offset + AUDIO_CHUNK, end)])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, offset, Fraction(1, rate)
        output.mux(stream.encode(frame))
    return max(start, end)


def save_mp4(
    folder: str | Path,
    stem: str,
    counter: int,
    frames: torch.Tensor | Iterable[torch.Tensor],
    fps: float,
    audio: tuple[np.ndarray, int] | None = None,
    metadata: Mapping[str, str] | None = None,
    settings: Mp4Settings | None = None,
) -> Path:
    """Encode into a hidden temporary file in `folder`, then name it `<stem>_<counter:05>_.mp4` (the first free one).

    The video appears whole or not at all: a failure or a kill while encoding leaves no file under a final name.
    """
    with partial_file(folder) as partial:
        write_mp4(partial, frames, fps, audio, metadata, settings)
        return publish(partial, stem, counter, ".mp4")
