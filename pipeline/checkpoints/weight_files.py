"""The one reader of weight files: a safetensors file, a folder, a sharded `*.index.json`, or a GGUF file.

Headers come from `weight_headers` (no data read); tensors are read file by file. A GGUF tensor of a quantised type
is returned as its raw uint8 blocks in the file's rows, float GGUF tensors as torch tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from .errors import CheckpointError, summarize_keys
from .fp8 import MARKER as FP8_MARKER
from .gguf_weights import FLOAT_TYPES, dequantize
from .weight_headers import TensorInfo, index_weight_map, is_gguf, is_safetensors, read_header

# Key prefixes of repackaged single files (ComfyUI saves diffusion models under `model.diffusion_model.`, other
# tools under `model.` or `diffusion_model.`); tried longest first.
KEY_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "model.", "")
# File-level markers that such files keep outside the prefix (ComfyUI's scaled-fp8 marker).
UNPREFIXED = (FP8_MARKER,)


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

    @property
    def gguf(self) -> bool:
        """True when the weights come from GGUF files."""
        return any(is_gguf(f) for f in self.files)


def is_weight_file(path: Path) -> bool:
    """True for a safetensors or GGUF file (told by content)."""
    return is_safetensors(path) or is_gguf(path)


def _folder_files(folder: Path) -> tuple[list[Path], dict[str, str] | None]:
    """Weight files of a folder: the shards of its one index JSON, else its one safetensors / GGUF file."""
    indexes = [(p, m) for p in sorted(folder.glob("*.json")) if (m := index_weight_map(p)) is not None]
    if len(indexes) > 1:
        raise CheckpointError(f"{folder}: several shard indexes ({summarize_keys(p.name for p, _ in indexes)})")
    if indexes:
        index_path, weight_map = indexes[0]
        return _shard_files(index_path, weight_map), weight_map
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and is_weight_file(p)]
    if not files:
        raise CheckpointError(f"{folder}: no weights (expected a .safetensors or .gguf file, or a shard index)")
    if len(files) > 1:
        raise CheckpointError(
            f"{folder}: several weight files and no shard index: {summarize_keys(f.name for f in files)}"
        )
    return files, None


def _shard_files(index_path: Path, weight_map: dict[str, str]) -> list[Path]:
    """The shard files an index lists, all present."""
    files = [index_path.parent / name for name in sorted(set(weight_map.values()))]
    absent = [f.name for f in files if not f.is_file()]
    if absent:
        raise CheckpointError(f"{index_path} lists shard files that are missing: {summarize_keys(absent)}")
    return files


def _strip_prefix(tensors: dict[str, TensorInfo], anchor: str, where: Path) -> tuple[dict[str, TensorInfo], str]:
    """Remove the common key prefix found in front of `anchor` (a key every checkpoint of this kind has)."""
    for prefix in KEY_PREFIXES:
        if prefix + anchor in tensors:
            break
    else:
        return tensors, ""
    if not prefix:
        return tensors, ""
    stray = [name for name in tensors if not name.startswith(prefix) and name not in UNPREFIXED]
    if stray:
        raise CheckpointError(f"{where}: keys are prefixed {prefix!r} except {summarize_keys(stray)}")
    return {name.removeprefix(prefix): info for name, info in tensors.items()}, prefix


def open_weights(path: str | Path, anchors: tuple[str, ...] = ()) -> WeightSource:
    """Index the tensors at `path` (file, folder, or index JSON); `anchors` are keys used to detect a prefix."""
    root = Path(path).expanduser()
    if not root.exists():
        raise CheckpointError(f"{root} does not exist")
    weight_map = None
    if root.is_dir():
        files, weight_map = _folder_files(root)
    elif (weight_map := index_weight_map(root)) is not None:
        files = _shard_files(root, weight_map)
    elif is_weight_file(root):
        files = [root]
    else:
        raise CheckpointError(f"{root} is neither a safetensors / GGUF file nor a shard index JSON")
    tensors: dict[str, TensorInfo] = {}
    metadata: dict[str, str] = {}
    for file in files:
        infos, meta = read_header(file)
        tensors.update(infos)
        metadata.update(meta)
    prefix = ""
    for anchor in anchors:
        stripped, prefix = _strip_prefix(tensors, anchor, root)
        if prefix or anchor in tensors:
            tensors = stripped
            break
    return WeightSource(root, files, tensors, weight_map is not None, root.is_dir(), prefix, metadata)


def _gguf_tensors(file: Path, wanted: dict[str, TensorInfo]) -> dict[str, torch.Tensor]:
    """Tensors of one GGUF file by stored name: float types as torch tensors, quantised ones as raw uint8 blocks."""
    import gguf

    reader = gguf.GGUFReader(str(file), "r")
    out = {}
    for tensor in reader.tensors:
        info = wanted.get(tensor.name)
        if info is None:
            continue
        raw = torch.from_numpy(np.array(tensor.data))  # one copy out of the memory map
        if info.dtype in FLOAT_TYPES:
            out[tensor.name] = dequantize(raw, info.dtype, info.shape, FLOAT_TYPES[info.dtype])
        else:
            out[tensor.name] = raw.view(torch.uint8)  # blocks in the file's rows ([out, row bytes] for a Linear)
    return out


def read_file_tensors(
    file: Path, infos: Iterable[TensorInfo], device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """The tensors `infos` (all in `file`) by stored name."""
    infos = list(infos)
    if is_gguf(file):
        return {k: v.to(device) for k, v in _gguf_tensors(file, {i.stored_name: i for i in infos}).items()}
    try:
        with safe_open(str(file), framework="pt", device=str(device)) as handle:
            return {info.stored_name: handle.get_tensor(info.stored_name) for info in infos}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{file}: cannot read as safetensors ({exc})") from exc


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
        stored = read_file_tensors(file, (info for _, info in entries), device)
        yield {key: convert(key, stored[info.stored_name]) for key, info in entries}


def read_weights(path: str | Path, wanted: Callable[[str], bool] = lambda name: True) -> dict[str, torch.Tensor]:
    """The tensors at `path` (file, folder or shard index) whose names pass `wanted`, on the CPU; only those are read."""
    source = open_weights(path)
    source.tensors = {key: info for key, info in source.tensors.items() if wanted(key)}
    out: dict[str, torch.Tensor] = {}
    for shard in iter_shards(source, lambda key, tensor: tensor):
        out.update(shard)
    return out
