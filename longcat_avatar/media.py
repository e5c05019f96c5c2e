"""Media files without extra dependencies: recognise image and audio formats by their bytes, read an MP4's duration."""

from __future__ import annotations

import struct

MP4_BRANDS = (b"M4A ", b"M4B ", b"mp42", b"mp41", b"isom", b"iso2", b"dash")  # MP4/M4A major brands seen in audio files


def image_extension(data: bytes) -> str | None:
    """The file extension of an image's bytes (PNG, JPEG, WebP, BMP: what ComfyUI's LoadImage reads), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:2] == b"BM" and len(data) > 26:  # 26 bytes: the smallest BMP header that holds a size
        return ".bmp"
    return None


def audio_extension(data: bytes) -> str | None:
    """The file extension of an audio file's bytes (WAV, FLAC, MP3, Ogg, M4A, WebM), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return ".wav"
    if data.startswith(b"fLaC"):
        return ".flac"
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):  # MPEG frame sync
        return ".mp3"
    if data.startswith(b"OggS"):
        return ".ogg"
    if data[4:8] == b"ftyp" and data[8:12] in MP4_BRANDS:
        return ".m4a"
    if data.startswith(b"\x1a\x45\xdf\xa3"):  # EBML header of Matroska/WebM
        return ".webm"
    return None


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """The ISO-BMFF boxes (type, payload start, payload end) between start and end."""
    boxes = []
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        header = 8
        if size == 1 and start + 16 <= end:  # a 64-bit size follows the type
            size, header = struct.unpack(">Q", data[start + 8 : start + 16])[0], 16
        elif size == 0:  # the box runs to the end of the file
            size = end - start
        if size < header:
            break
        boxes.append((kind, start + header, min(start + size, end)))
        start += size
    return boxes


def mp4_duration(data: bytes) -> float | None:
    """The duration in seconds that an MP4's movie header (moov/mvhd) declares, or None when there is none."""
    for kind, begin, end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for inner, start, _ in _boxes(data, begin, end):
            if inner == b"mvhd":
                version = data[start]
                if version == 1:  # 64-bit times: 4 flags + 8 created + 8 modified, then timescale and duration
                    scale, duration = struct.unpack(">IQ", data[start + 20 : start + 32])
                else:  # 32-bit times: 4 flags + 4 created + 4 modified
                    scale, duration = struct.unpack(">II", data[start + 12 : start + 20])
                return duration / scale if scale else None
    return None
