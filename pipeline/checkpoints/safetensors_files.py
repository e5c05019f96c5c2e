"""Finding and reading safetensors weights: one file, a folder, or a sharded `*.safetensors.index.json`."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from .errors import CheckpointError, summarize_keys
from .header import MAX_HEADER_BYTES

# Key prefixes of repackaged single files (ComfyUI saves diffusion models under `model.diffusion_model.`, other
# tools under `model.` or `diffusion_model.`); tried longest first.
KEY_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "model.", "")


@dataclass(frozen=True)
class TensorInfo:
    """Header facts of one stored tensor."""

    file: Path
    stored_name: str
    shape: tuple[int, ...]
    dtype: str  # safetensors dtype code: F32, BF16, F16, I8, ...


@dataclass
class WeightSource:
    """The tensors of a checkpoint, by model key (prefix stripped), with the files that hold them."""

    root: Path  # the folder or file the user gave
    files: list[Path]
    tensors: dict[str, TensorInfo]
    sharded: bool = False
    is_folder: bool = False
    prefix: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def shape(self, key: str) -> tuple[int, ...] | None:
        """Stored shape of a model key, or None when absent."""
        info = self.tensors.get(key)
        return None if info is None else info.shape


def is_safetensors(path: Path) -> bool:
    """True if the file starts with a plausible safetensors header (length + JSON object)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(9)
    except OSError:
        return False
    if len(raw) < 9:
        return False
    (length,) = struct.unpack("<Q", raw[:8])
    return 0 < length < MAX_HEADER_BYTES and raw[8:9] == b"{"


def _index_weight_map(path: Path) -> dict[str, str] | None:
    """The `weight_map` of a sharded-checkpoint index JSON, or None if the file is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    return weight_map if isinstance(weight_map, dict) and weight_map else None


def _read_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Names, shapes and dtypes of one safetensors file (no tensor data is read)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            infos = {}
            for name in list(handle.keys()):
                sl = handle.get_slice(name)
                infos[name] = TensorInfo(path, name, tuple(sl.get_shape()), sl.get_dtype())
            return infos, dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path}: cannot read as safetensors ({exc})") from exc


def _folder_files(folder: Path) -> tuple[list[Path], dict[str, str] | None]:
    """Weight files of a folder: the shards of its one index JSON, else its one safetensors file."""
    indexes = [(p, m) for p in sorted(folder.glob("*.json")) if (m := _index_weight_map(p)) is not None]
    if len(indexes) > 1:
        raise CheckpointError(f"{folder}: several shard indexes ({summarize_keys(p.name for p, _ in indexes)})")
    if indexes:
        index_path, weight_map = indexes[0]
        files = [folder / name for name in sorted(set(weight_map.values()))]
        absent = [f.name for f in files if not f.is_file()]
        if absent:
            raise CheckpointError(f"{index_path} lists shard files that are missing: {summarize_keys(absent)}")
        return files, weight_map
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and is_safetensors(p)]
    if not files:
        raise CheckpointError(f"{folder}: no safetensors weights (expected a .safetensors file or a shard index)")
    if len(files) > 1:
        raise CheckpointError(
            f"{folder}: several safetensors files and no shard index: {summarize_keys(f.name for f in files)}"
        )
    return files, None


def _strip_prefix(tensors: dict[str, TensorInfo], anchor: str, where: Path) -> tuple[dict[str, TensorInfo], str]:
    """Remove the common key prefix found in front of `anchor` (a key every checkpoint of this kind has)."""
    for prefix in KEY_PREFIXES:
        if prefix + anchor in tensors:
            break
    else:
        return tensors, ""
    if not prefix:
        return tensors, ""
    stray = [name for name in tensors if not name.startswith(prefix)]
    if stray:
        raise CheckpointError(f"{where}: keys are prefixed {prefix!r} except {summarize_keys(stray)}")
    return {name[len(prefix) :]: info for name, info in tensors.items()}, prefix


def open_weights(path: str | Path, anchors: tuple[str, ...]) -> WeightSource:
    """Index the tensors at `path` (file, folder, or index JSON); `anchors` are keys used to detect a prefix."""
    root = Path(path).expanduser()
    if not root.exists():
        raise CheckpointError(f"{root} does not exist")
    weight_map = None
    if root.is_dir():
        files, weight_map = _folder_files(root)
    elif (weight_map := _index_weight_map(root)) is not None:
        files = [root.parent / name for name in sorted(set(weight_map.values()))]
    elif is_safetensors(root):
        files = [root]
    else:
        raise CheckpointError(f"{root} is neither a safetensors file nor a shard index JSON")
    tensors: dict[str, TensorInfo] = {}
    metadata: dict[str, str] = {}
    for file in files:
        infos, meta = _read_header(file)
        tensors.update(infos)
        metadata.update(meta)
    prefix = ""
    for anchor in anchors:
        stripped, prefix = _strip_prefix(tensors, anchor, root)
        if prefix or anchor in tensors:
            tensors = stripped
            break
    return WeightSource(root, files, tensors, weight_map is not None, root.is_dir(), prefix, metadata)


def iter_shards(
    source: WeightSource, convert: Callable[[str, torch.Tensor], torch.Tensor], device: str | torch.device = "cpu"
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield the tensors file by file (one shard in memory at a time), keyed by model key, passed through `convert`."""
    by_file: dict[Path, list[tuple[str, TensorInfo]]] = {}
    for key, info in source.tensors.items():
        by_file.setdefault(info.file, []).append((key, info))
    for file in source.files:
        entries = by_file.get(file, [])
        if not entries:
            continue
        with safe_open(str(file), framework="pt", device=str(device)) as handle:
            yield {key: convert(key, handle.get_tensor(info.stored_name)) for key, info in entries}
