"""Load a LongCat-Avatar DiT from any layout or format, detected from tensor names, shapes and types (never file names)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..dit.config import DiTConfig
from ..dit.model import LongCatAvatarDiT
from ..operations import resolve_operations, without_init
from ..versions import VERSIONS
from .dit_config_infer import infer_dit_config
from .dit_storage import fill_default_scales, plan_storage, swap_quantized
from .errors import CheckpointError, key_mismatch_error
from .fp8 import is_fp8_code
from .gguf_weights import FLOAT_TYPES
from .int8 import INT8_SUFFIX, quantize_model
from .lora import LoRAInfo, apply_lora
from .quantized import quantized_layers
from .weight_files import WeightSource, iter_shards, open_weights

log = logging.getLogger(__name__)

# Keys every LongCat-Avatar DiT has (dense or quantised); used to find a repackaging prefix.
ANCHOR_KEYS = ("x_embedder.proj.weight", "audio_proj.norm.weight")


@dataclass
class LoadedDiT:
    """A loaded model with what was detected about its checkpoint."""

    model: LongCatAvatarDiT
    config: DiTConfig
    version: str  # "v1.0" or "v1.5"
    format: str  # "diffusers-folder", "sharded", "single-file", "int8", "fp8" or "gguf (<tensor types>)"
    multi_speaker: bool
    lora: LoRAInfo | None = None
    files: tuple[Path, ...] = ()
    key_prefix: str = ""


def detect_format(source: WeightSource) -> str:
    """ "int8" (`*.weight_int8` tensors), "fp8" (float8 weights), "gguf (<types>)", else "sharded" (index JSON),
    "diffusers-folder" or "single-file"."""
    codes = {info.dtype for info in source.tensors.values()}
    if any(key.endswith(INT8_SUFFIX) for key in source.tensors):
        return "int8"
    if source.gguf:
        quantized = sorted(codes - set(FLOAT_TYPES))
        return f"gguf ({', '.join(quantized)})" if quantized else "gguf"
    if any(is_fp8_code(code) for code in codes):
        return "fp8"
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
    """State-dict names and shapes of a (meta) model, quantised tensors at the shape a header lists."""
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    for name, layer in quantized_layers(model).items():
        shapes.update({f"{name}.{key}": shape for key, shape in layer.logical_shapes().items()})
    return shapes


def validate_keys(source: WeightSource, model: nn.Module, optional: frozenset[str] = frozenset()) -> None:
    """Raise CheckpointError naming missing / unexpected / mis-shaped tensors before any data is read."""
    expected = expected_shapes(model)
    stored = {key: info.shape for key, info in source.tensors.items()}
    missing = expected.keys() - stored.keys() - optional
    unexpected = stored.keys() - expected.keys()
    shapes = [
        f"{k} {list(stored[k])} (want {list(expected[k])})"
        for k in expected.keys() & stored.keys()
        if stored[k] != expected[k]
    ]
    if missing or unexpected or shapes:
        raise key_mismatch_error(source.root, missing, unexpected, shapes)


def build_model(
    config: DiTConfig, source: WeightSource, operations: Any, dtype: torch.dtype, device: str | torch.device
) -> LongCatAvatarDiT:
    """Build on the meta device with quantised layers where the file stores them, then assign the stored tensors
    shard by shard (one copy in memory)."""
    ops = without_init(operations)
    model = LongCatAvatarDiT(config, operations=ops, device="meta", dtype=dtype)
    plan = plan_storage(source, model)
    swap_quantized(model, plan, ops, dtype)
    validate_keys(source, model, plan.optional)
    for shard in iter_shards(source, plan.converter(dtype), device):
        model.load_state_dict(shard, strict=False, assign=True)
    fill_default_scales(model, device)
    left = [name for name, t in model.state_dict().items() if t.is_meta]
    if left:
        raise key_mismatch_error(source.root, missing=left)
    model.requires_grad_(False)
    return model.eval()


def _quantize_on_load(loaded: LoadedDiT, operations: Any) -> None:
    """Int8 weight-only quantisation of a dense DiT, the official per-channel scheme (no-op when already quantised)."""
    present = {layer.format_name for layer in quantized_layers(loaded.model).values()}
    if present:
        log.info("LongCat Avatar: %s is already quantised (%s); int8 on load skipped", loaded.files[0], present)
        return
    names = quantize_model(loaded.model, layer_cls=resolve_operations(operations).Int8Linear)
    loaded.format = f"{loaded.format}, quantised to int8 on load"
    log.info("LongCat Avatar: quantised %d Linear layers to int8", len(names))


def load_dit(
    path: str | Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: str | torch.device = "cpu",
    lora_path: str | Path | None = None,
    lora_strength: float = 1.0,
    merge_lora: bool = False,
    quantize_int8: bool = False,
    operations: Any = None,
    multi_speaker: bool | None = None,
    version: str | None = None,
) -> LoadedDiT:
    """Load a DiT folder (diffusers or official int8), shard index, single safetensors file (dense or fp8) or GGUF.

    `quantize_int8` quantises a dense DiT to int8 after loading (a merged LoRA is merged first; an unmerged one is
    applied to the int8 layers). `multi_speaker`: v1.0 ships single- and multi-speaker DiTs with identical keys, so
    the caller says which (default single); the one v1.5 DiT serves both. `version` only breaks a tie when a
    config-less tiny file fits both.
    """
    source = open_weights(path, ANCHOR_KEYS)
    config = resolve_config(source, version)
    try:
        model_version = config.version
    except ValueError as exc:
        raise CheckpointError(f"{source.root}: {exc}") from exc
    model = build_model(config, source, operations, dtype, device)
    multi = multi_speaker if multi_speaker is not None else VERSIONS[model_version].multi_speaker_dit
    loaded = LoadedDiT(
        model, config, model_version, detect_format(source), multi, None, tuple(source.files), source.prefix
    )
    merge_first = quantize_int8 and merge_lora and lora_path is not None
    if merge_first:
        loaded.lora = apply_lora(model, lora_path, lora_strength, merge=True)
    if quantize_int8:
        _quantize_on_load(loaded, operations)
    if lora_path is not None and not merge_first:
        loaded.lora = apply_lora(model, lora_path, lora_strength, merge_lora)
    return loaded
