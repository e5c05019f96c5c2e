"""Writing DiT checkpoints in the official layouts (diffusers folder, sharded index, int8 folder)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..dit.config import DiTConfig
from .int8 import DEFAULT_SKIP

# Official int8 folder file names and metadata (what `save_quantized_state_dict` writes).
INT8_INDEX = "quantized_model.safetensors.index.json"
INT8_SHARD = "quantized_model-{index:05d}-of-{count:05d}.safetensors"
DIFFUSERS_INDEX = "diffusion_pytorch_model.safetensors.index.json"
DIFFUSERS_SHARD = "diffusion_pytorch_model-{index:05d}-of-{count:05d}.safetensors"
QUANT_CONFIG = {
    "quantization_method": "int8_per_channel_symmetric",
    "skip_patterns": list(DEFAULT_SKIP),
    "description": "Weight-only INT8 quantization with per-channel symmetric scaling",
}


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Storage bytes of one tensor."""
    return tensor.numel() * tensor.element_size()


def plan_shards(state: dict[str, torch.Tensor], max_bytes: int) -> list[list[str]]:
    """Greedy split of the keys (in order) into shards of at most `max_bytes` (a bigger tensor gets its own)."""
    shards: list[list[str]] = [[]]
    size = 0
    for key, tensor in state.items():
        if shards[-1] and size + tensor_bytes(tensor) > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += tensor_bytes(tensor)
    return shards


def save_sharded(
    state: dict[str, torch.Tensor],
    folder: str | Path,
    max_bytes: int,
    shard_name: str = DIFFUSERS_SHARD,
    index_name: str = DIFFUSERS_INDEX,
) -> list[Path]:
    """Write `state` as shards plus a `weight_map` index JSON; returns the shard paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shards = plan_shards(state, max_bytes)
    paths, weight_map = [], {}
    for number, keys in enumerate(shards, start=1):
        path = folder / shard_name.format(index=number, count=len(shards))
        save_file({k: state[k].contiguous() for k in keys}, str(path), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(keys, path.name))
        paths.append(path)
    index = {"metadata": {"total_size": sum(tensor_bytes(t) for t in state.values())}, "weight_map": weight_map}
    (folder / index_name).write_text(json.dumps(index, indent=2))
    return paths


def write_config(config: DiTConfig, folder: str | Path) -> Path:
    """config.json in the official key layout (plus the class name diffusers expects)."""
    path = Path(folder) / "config.json"
    data = {"_class_name": "LongCatVideoAvatarTransformer3DModel", **config.to_dict()}
    data.pop("attention_backend")
    if data["ffn_hidden_size"] is None:
        data.pop("ffn_hidden_size")
    path.write_text(json.dumps(data, indent=2))
    return path


def save_int8_folder(
    state: dict[str, torch.Tensor], config: DiTConfig, folder: str | Path, max_bytes: int
) -> list[Path]:
    """The official int8 folder: quantized shards + index, config.json and quantization_config.json."""
    folder = Path(folder)
    paths = save_sharded(state, folder, max_bytes, INT8_SHARD, INT8_INDEX)
    write_config(config, folder)
    (folder / "quantization_config.json").write_text(json.dumps(QUANT_CONFIG, indent=2))
    return paths
