"""Weight-file headers without torch: tensor names, shapes and storage types of safetensors and GGUF files.

Shared by the loaders (through `weight_files`) and by the command line's model inventory, which must run where torch
is not installed; GGUF headers are parsed by the `gguf` package (numpy only), imported when a GGUF file is read.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CheckpointError

# A safetensors file starts with an 8-byte little-endian header length; headers are far below 100 MB.
MAX_HEADER_BYTES = 100 * 1024 * 1024
# Every GGUF file starts with these four bytes (ggml's GGUF_MAGIC).
GGUF_MAGIC = b"GGUF"
# Metadata key under which ComfyUI-GGUF's converter records the torch shape of a tensor it had to reshape.
GGUF_ORIG_SHAPE_KEY = "comfy.gguf.orig_shape."


@dataclass(frozen=True)
class TensorInfo:
    """Header facts of one stored tensor."""

    file: Path
    stored_name: str
    shape: tuple[int, ...]  # the tensor's shape in torch order (a GGUF tensor's logical shape, not its byte rows)
    dtype: str  # safetensors code (F32, BF16, F8_E4M3, I8, ...) or GGUF type name (Q4_K, Q8_0, F16, ...)


def is_safetensors(path: Path) -> bool:
    """True if the file starts with a plausible safetensors header (length + JSON object)."""
    raw = _first_bytes(path, 9)
    if len(raw) < 9:
        return False
    (length,) = struct.unpack("<Q", raw[:8])
    return 0 < length < MAX_HEADER_BYTES and raw[8:9] == b"{"


def is_gguf(path: Path) -> bool:
    """True if the file starts with the GGUF magic."""
    return _first_bytes(path, len(GGUF_MAGIC)) == GGUF_MAGIC


def _first_bytes(path: Path, count: int) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(count)
    except OSError:
        return b""


def index_weight_map(path: Path) -> dict[str, str] | None:
    """The `weight_map` of a sharded-checkpoint index JSON, or None if the file is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    return weight_map if isinstance(weight_map, dict) and weight_map else None


def safetensors_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Tensors and `__metadata__` of a safetensors file, parsed from its JSON header (no tensor data read)."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if not 0 < length < MAX_HEADER_BYTES:
                raise ValueError(f"header length {length}")
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error) as exc:
        raise CheckpointError(f"{path}: cannot read as safetensors ({exc})") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: cannot read as safetensors (header is not a JSON object)")
    meta = header.get("__metadata__") or {}
    infos = {
        name: TensorInfo(path, name, tuple(int(d) for d in entry.get("shape", [])), str(entry.get("dtype", "")))
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict)
    }
    return infos, {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def _field_value(field: Any) -> Any:
    """A scalar or string GGUF metadata value, or None for arrays."""
    if len(field.types) != 1 or not field.data:
        return None
    value = field.parts[field.data[0]]
    if field.types[0].name == "STRING":
        return bytes(value).decode("utf-8", errors="replace")
    return value.tolist()[0] if hasattr(value, "tolist") else value


def gguf_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Tensors (torch-order shapes) and scalar metadata of a GGUF file; tensor data stay on disk."""
    import gguf  # numpy only; imported here so safetensors-only callers do not need it

    try:
        reader = gguf.GGUFReader(str(path), "r")
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise CheckpointError(f"{path}: cannot read as GGUF ({exc})") from exc
    meta = {}
    for key, field in reader.fields.items():
        value = _field_value(field)
        if value is not None:
            meta[key] = str(value)
    infos = {}
    for tensor in reader.tensors:
        shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))  # GGUF lists dimensions fastest first
        orig = reader.fields.get(GGUF_ORIG_SHAPE_KEY + tensor.name)
        if orig is not None:
            shape = tuple(int(orig.parts[i][0]) for i in orig.data)
        infos[tensor.name] = TensorInfo(path, tensor.name, shape, tensor.tensor_type.name)
    return infos, meta


def read_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Tensors and metadata of one weight file, safetensors or GGUF, told apart by content."""
    if is_gguf(path):
        return gguf_header(path)
    if is_safetensors(path):
        return safetensors_header(path)
    raise CheckpointError(f"{path} is neither a safetensors nor a GGUF file")
