"""The JSON header of a .safetensors file, read without torch: tensor names, dtypes and shapes, no weights."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

# A safetensors file starts with an 8-byte little-endian header length; headers are a few MB at most, so a larger
# length means the file is not one (or is corrupt).
MAX_HEADER_BYTES = 100 * 1024 * 1024


def read_header(path: Path) -> dict[str, Any] | None:
    """The header of a .safetensors file (tensor name -> {dtype, shape, data_offsets}), or None if it is not one."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if not 0 < length < MAX_HEADER_BYTES:
                return None
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return None
    return header if isinstance(header, dict) else None
