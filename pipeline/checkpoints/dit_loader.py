"""Load a LongCat-Avatar DiT from any official layout, detected from tensor names and shapes (never file names)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..dit.config import DiTConfig
from ..dit.layers import without_init
from ..dit.model import LongCatAvatarDiT
from ..versions import VERSIONS
from .dit_config_infer import infer_dit_config
from .errors import CheckpointError, key_mismatch_error
from .int8 import INT8_SUFFIX, SCALE_SUFFIX, int8_layer_names, swap_to_int8
from .lora import LoRAInfo, apply_lora
from .safetensors_files import WeightSource, iter_shards, open_weights

log = logging.getLogger(__name__)

# Keys every LongCat-Avatar DiT has (dense or int8); used to find a repackaging prefix.
ANCHOR_KEYS = ("x_embedder.proj.weight", "audio_proj.norm.weight")


@dataclass
class LoadedDiT:
    """A loaded model with what was detected about its checkpoint."""

    model: LongCatAvatarDiT
    config: DiTConfig
    version: str  # "v1.0" or "v1.5"
    format: str  # "diffusers-folder", "sharded", "single-file" or "int8"
    multi_speaker: bool
    lora: LoRAInfo | None = None
    files: tuple[Path, ...] = ()
    key_prefix: str = ""


def detect_format(source: WeightSource) -> str:
    """ "int8" if any tensor is `*.weight_int8`, else "sharded" (index JSON), "diffusers-folder" or "single-file"."""
    if any(key.endswith(INT8_SUFFIX) for key in source.tensors):
        return "int8"
    if source.sharded:
        return "sharded"
    return "diffusers-folder" if source.is_folder else "single-file"


def _read_dit_config(path: Path) -> DiTConfig | None:
    """The DiTConfig of a config.json, or None when the file is absent or describes something else."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not {"hidden_size", "depth", "num_heads"} <= data.keys():
        return None
    return DiTConfig.from_dict(data)


def _same_geometry(a: DiTConfig, b: DiTConfig) -> bool:
    per_slot = (a.audio_block * a.audio_channel, b.audio_block * b.audio_channel)
    return (a.hidden_size, a.depth, a.num_heads, a.ffn_dim) == (b.hidden_size, b.depth, b.num_heads, b.ffn_dim) and (
        per_slot[0] == per_slot[1]
    )


def resolve_config(source: WeightSource, version: str | None = None) -> DiTConfig:
    """The geometry to build: a folder's (or shard index's) config.json is authoritative, as in the official layouts;
    a single file uses the geometry inferred from its shapes, refined by a sibling config.json only if it fits."""
    folder = source.root if source.is_folder else source.root.parent
    config = _read_dit_config(folder / "config.json")
    if config is not None and (source.is_folder or source.sharded):
        return config
    inferred = infer_dit_config(source, version)
    if config is not None and _same_geometry(config, inferred) and (version is None or config.version == version):
        return config
    return inferred


def expected_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """State-dict names and shapes of a (meta) model."""
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def validate_keys(source: WeightSource, model: nn.Module) -> None:
    """Raise CheckpointError naming missing / unexpected / mis-shaped tensors before any data is read."""
    expected = expected_shapes(model)
    stored = {key: info.shape for key, info in source.tensors.items()}
    missing = expected.keys() - stored.keys()
    unexpected = stored.keys() - expected.keys()
    shapes = [
        f"{k} {list(stored[k])} (want {list(expected[k])})"
        for k in expected.keys() & stored.keys()
        if stored[k] != expected[k]
    ]
    if missing or unexpected or shapes:
        raise key_mismatch_error(source.root, missing, unexpected, shapes)


def make_converter(dtype: torch.dtype, int8: bool):
    """Per-tensor dtype policy: int8 weights and their fp32 scales untouched; other floats -> dtype.

    In the int8 format the non-quantised tensors are bf16 (the official loader casts them to bf16), so they are
    rounded through bf16 first even when a file stores them in float32.
    """

    def convert(key: str, tensor: torch.Tensor) -> torch.Tensor:
        """The tensor as it is kept in the model."""
        if key.endswith(INT8_SUFFIX):
            return tensor
        if key.endswith(SCALE_SUFFIX) and int8:
            return tensor.float()
        if int8 and tensor.is_floating_point():
            tensor = tensor.to(torch.bfloat16)
        return tensor.to(dtype) if tensor.is_floating_point() else tensor

    return convert


def build_model(
    config: DiTConfig, source: WeightSource, operations: Any, dtype: torch.dtype, device: str | torch.device
) -> LongCatAvatarDiT:
    """Build on the meta device, then assign the stored tensors shard by shard (one copy in memory)."""
    model = LongCatAvatarDiT(config, operations=without_init(operations), device="meta", dtype=dtype)
    int8_names = int8_layer_names(source.tensors)
    swap_to_int8(model, int8_names, device="meta", dtype=dtype)
    validate_keys(source, model)
    convert = make_converter(dtype, bool(int8_names))
    for shard in iter_shards(source, convert, device):
        model.load_state_dict(shard, strict=False, assign=True)
    left = [name for name, t in model.state_dict().items() if t.is_meta]
    if left:
        raise key_mismatch_error(source.root, missing=left)
    model.requires_grad_(False)
    return model.eval()


def load_dit(
    path: str | Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: str | torch.device = "cpu",
    lora_path: str | Path | None = None,
    lora_strength: float = 1.0,
    merge_lora: bool = False,
    operations: Any = None,
    multi_speaker: bool | None = None,
    version: str | None = None,
) -> LoadedDiT:
    """Load a DiT folder (diffusers or official int8), shard index, or single safetensors file.

    `multi_speaker`: v1.0 ships single- and multi-speaker DiTs with identical keys, so the caller says which (default
    single); the one v1.5 DiT serves both. `version` only breaks a tie when a config-less tiny file fits both.
    """
    source = open_weights(path, ANCHOR_KEYS)
    config = resolve_config(source, version)
    try:
        model_version = config.version
    except ValueError as exc:
        raise CheckpointError(f"{source.root}: {exc}") from exc
    model = build_model(config, source, operations, dtype, device)
    lora = apply_lora(model, lora_path, lora_strength, merge_lora) if lora_path is not None else None
    multi = multi_speaker if multi_speaker is not None else VERSIONS[model_version].multi_speaker_dit
    return LoadedDiT(
        model, config, model_version, detect_format(source), multi, lora, tuple(source.files), source.prefix
    )
