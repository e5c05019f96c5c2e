"""Media files without extra dependencies: recognise image and audio formats by their bytes, read an image's size from
its header (refusing decompression bombs before anything decodes them), read an MP4's duration."""

from __future__ import annotations

import struct

from .shared import limits

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


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header, without decoding its pixels; None when the header is unreadable."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:2] == b"BM":
            header = struct.unpack("<I", data[14:18])[0]
            if header == 12:  # BITMAPCOREHEADER: 16-bit sizes
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)  # a negative height means rows stored top-down
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in a JPEG's start-of-frame segment."""
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        if marker in (0x01, *range(0xD0, 0xDA)):  # markers without a length (TEM, RSTn, SOI, EOI)
            offset += 2
            continue
        length = struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn (not DHT, JPG, DAC)
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
        offset += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size of a WebP (lossy VP8, lossless VP8L or extended VP8X)."""
    chunk = data[12:16]
    if chunk == b"VP8X":  # 24-bit canvas width-1 and height-1
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L":  # 14 bits each of width-1 and height-1 after the 0x2F signature byte
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":  # the key frame header: 3-byte tag, 3-byte start code, then 14-bit sizes
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def portrait_problem(data: bytes) -> str | None:
    """Why a portrait file cannot be used, judged from its header only (so a decompression bomb is never decoded)."""
    size = image_size(data)
    if size is None:
        return "has a damaged or unknown image header: save it again as PNG or JPEG"
    return limits.portrait_size_problem(*size)
