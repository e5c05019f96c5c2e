"""Official LongCat LoRA files (`lora___lorahyphen___...`), applied on the fly (weight patches) or merged, and the
recognition of the v1.5 DMD distillation LoRA (which decides the sampler's distilled auto mode)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..sampling.mode import LORA_DISTILLATION, LORA_OTHER
from ..versions import VERSIONS
from .errors import CheckpointError, summarize_keys
from .quantized import QuantizedLinear
from .weight_files import open_weights, read_weights

log = logging.getLogger(__name__)

PREFIX = "lora___lorahyphen___"
HYPHEN = "___lorahyphen___"
DOWN, UP, UP_BLOCK, ALPHA = ".lora_down.weight", ".lora_up.weight", ".lora_up.blocks.", ".alpha_scale"
DMD_RANK = 128  # the reference LoRANetwork's lora_dim (alpha 64 -> alpha_scale 0.5), the DMD LoRA's rank
# Every block's targets in the DMD LoRA, with their number of up-projection blocks (the reference's LoRAUPParallel
# n_seperate for fused projections). Avatar-1.5's key list is not published: this is the target set of
# LongCat-Video's own step-distillation LoRA (cfg_step_lora: 24 keys per block), which at the real size (48 blocks,
# hidden 4096, FFN 11008) is 630,718,464 parameters = 1.26 GB in bf16 and 2.52 GB in fp32, the sizes reported for
# dmd_lora.safetensors. Files at the official path are recognised whatever their tensors.
DMD_TARGETS = {
    "attn.qkv": 3,
    "attn.proj": 1,
    "cross_attn.q_linear": 1,
    "cross_attn.kv_linear": 2,
    "ffn.w1": 1,
    "ffn.w2": 1,
    "ffn.w3": 1,
}


@dataclass
class LoRAEntry:
    """One target Linear: down [n*r, in], n up-projections [out/n, r] (n > 1 for fused layers), alpha_scale."""

    module: str
    down: torch.Tensor
    ups: list[torch.Tensor]
    alpha_scale: float

    @property
    def rank(self) -> int:
        """Rank r of each up-projection."""
        return self.ups[0].shape[1]

    def delta_weight(self) -> torch.Tensor:
        """alpha_scale * up @ down as a dense [out, in] float32 matrix (block-diagonal up for split layers)."""
        downs = self.down.float().chunk(len(self.ups), dim=0)
        return torch.cat([up.float() @ d for up, d in zip(self.ups, downs, strict=True)], dim=0) * self.alpha_scale


@dataclass
class LoRAInfo:
    """What a LoRA did to a model."""

    path: str
    strength: float
    merged: bool
    modules: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rank: int = 0
    alpha_scales: list[float] = field(default_factory=list)
    distillation: bool = False  # the DMD distillation LoRA (official path, or its tensor set for this model)

    @property
    def role(self) -> str:
        """What the sampler's distilled auto mode needs to know: the DMD distillation LoRA, or another one."""
        return LORA_DISTILLATION if self.distillation else LORA_OTHER


def module_name(lora_name: str) -> str:
    """`lora___lorahyphen___blocks___lorahyphen___0...` -> `blocks.0...`."""
    return lora_name.removeprefix(PREFIX).replace(HYPHEN, ".")


def lora_key(module: str) -> str:
    """`blocks.0.attn.qkv` -> `lora___lorahyphen___blocks___lorahyphen___0___lorahyphen___attn___lorahyphen___qkv`."""
    return PREFIX + module.replace(".", HYPHEN)


def distillation_tensor_set(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """The DMD LoRA's tensor names and shapes for this model (the layer sizes follow from its DiT config)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for index in range(len(model.blocks)):
        for target, parts in DMD_TARGETS.items():
            layer = model.get_submodule(f"blocks.{index}.{target}")
            key = lora_key(f"blocks.{index}.{target}")
            shapes[key + DOWN] = (parts * DMD_RANK, layer.in_features)
            ups = [key + UP] if parts == 1 else [f"{key}{UP_BLOCK}{j}.weight" for j in range(parts)]
            shapes.update(dict.fromkeys(ups, (layer.out_features // parts, DMD_RANK)))
            shapes[key + ALPHA] = ()
    return shapes


def lora_tensor_set(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a LoRA file, read from its header (no weights loaded)."""
    return {key: tuple(info.shape) for key, info in open_weights(path).tensors.items()}


def is_distillation_lora(model: nn.Module, path: str | Path) -> bool:
    """The DMD distillation LoRA: the official file (by its path under models/longcat/), or the same tensor set."""
    official = [spec.distill_lora_path for spec in VERSIONS.values() if spec.distill_lora_path]
    if any(Path(path).as_posix().endswith(f"/{name}") for name in official):
        return True
    return hasattr(model, "blocks") and lora_tensor_set(path) == distillation_tensor_set(model)


def _group_keys(keys: list[str], path: Path) -> dict[str, dict[str, str]]:
    groups: dict[str, dict[str, str]] = {}
    bad = []
    for key in keys:
        for suffix in (DOWN, UP, ALPHA):
            if key.endswith(suffix):
                groups.setdefault(key[: -len(suffix)], {})[suffix] = key
                break
        else:
            base, sep, rest = key.partition(UP_BLOCK)
            if sep and rest.endswith(".weight") and rest.removesuffix(".weight").isdigit():
                groups.setdefault(base, {})[f"up{int(rest.removesuffix('.weight')):05d}"] = key
            else:
                bad.append(key)
    if bad or not groups or not all(k.startswith(PREFIX) for k in groups):
        raise CheckpointError(
            f"{path}: not an official LongCat LoRA (`{PREFIX}...` keys); unexpected: {summarize_keys(bad or keys)}"
        )
    return groups


def read_lora(path: str | Path) -> list[LoRAEntry]:
    """Decode the LoRA file into entries; a module without down, up or alpha_scale is an error."""
    path = Path(path)
    groups = _group_keys(list(open_weights(path).tensors), path)  # names first: a wrong file is refused unread
    tensors = read_weights(path)
    entries = []
    for name, parts in sorted(groups.items()):
        ups = [tensors[parts[k]] for k in sorted(k for k in parts if k.startswith("up"))]
        if UP in parts:
            ups = [tensors[parts[UP]]]
        if DOWN not in parts or not ups or ALPHA not in parts:
            missing = [s for s in (DOWN, UP, ALPHA) if s not in parts and not (s == UP and ups)]
            raise CheckpointError(f"{path}: LoRA module {name} lacks {', '.join(missing)}")
        entry = LoRAEntry(module_name(name), tensors[parts[DOWN]], ups, float(tensors[parts[ALPHA]]))
        if entry.down.shape[0] != entry.rank * len(ups):
            raise CheckpointError(
                f"{path}: {name} down has {entry.down.shape[0]} rows for {len(ups)} x rank {entry.rank}"
            )
        entries.append(entry)
    return entries


class LoRAPatch:
    """A weight patch (an entry of a layer's `weight_function`): W + strength * delta, in float32, back in W's dtype.

    The same arithmetic as merging, applied to whatever weight the layer uses at call time (dense, or dequantised
    from int8 / fp8 / GGUF); the LoRA tensors are kept in the model's dtype.
    """

    def __init__(self, entry: LoRAEntry, strength: float, dtype: torch.dtype, device: torch.device) -> None:
        self.module = entry.module
        self.strength = strength
        self.alpha_scale = entry.alpha_scale
        self.down = entry.down.to(device=device, dtype=dtype)
        self.ups = [up.to(device=device, dtype=dtype) for up in entry.ups]

    def entry(self) -> LoRAEntry:
        """The LoRA entry this patch applies (tensors in the model's dtype)."""
        return LoRAEntry(self.module, self.down, self.ups, self.alpha_scale)

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        """The patched weight."""
        delta = self.entry().delta_weight().to(weight.device)
        return (weight.float() + self.strength * delta).to(weight.dtype)

    def move_to(self, device: torch.device) -> int:
        """Move the LoRA tensors (ComfyUI's weight-function protocol); returns the bytes now on `device`."""
        self.down = self.down.to(device)
        self.ups = [up.to(device) for up in self.ups]
        return sum(t.numel() * t.element_size() for t in (self.down, *self.ups))


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype LoRA weights are kept in: the model's first floating parameter of a compute dtype (as the reference;
    fp8 storage is not one)."""
    compute = (torch.float32, torch.float16, torch.bfloat16)
    return next((p.dtype for p in model.parameters() if p.dtype in compute), torch.float32)


def _check_shape(entry: LoRAEntry, layer: nn.Module, path: str | Path) -> None:
    out_rows = sum(up.shape[0] for up in entry.ups)
    if (out_rows, entry.down.shape[1]) != (layer.out_features, layer.in_features):
        raise CheckpointError(
            f"{path}: LoRA for {entry.module} is [{out_rows}, {entry.down.shape[1]}] but the layer is "
            f"[{layer.out_features}, {layer.in_features}]; the LoRA belongs to another model"
        )


def _refuse_merge(path: str | Path, quantized: list[str], formats: set[str]) -> CheckpointError:
    """The error for merge_lora on layers whose weights are stored quantised."""
    return CheckpointError(
        f"{path}: merge_lora cannot merge into {', '.join(sorted(formats))} layers ({summarize_keys(quantized)}): "
        "their weights stay quantised. Load the LoRA unmerged (merge_lora off): it is applied to the dequantised "
        "weights at every step, with the same result."
    )


def _targets(model: nn.Module, entries: list[LoRAEntry], info: LoRAInfo, path: str | Path) -> list[nn.Module]:
    """The layer of each entry (None when the model has no such Linear, recorded as skipped)."""
    layers = []
    for entry in entries:
        try:
            layer = model.get_submodule(entry.module)
        except AttributeError:
            layer = None
        if layer is None or not hasattr(layer, "in_features"):
            info.skipped.append(entry.module)
            layers.append(None)
            continue
        _check_shape(entry, layer, path)
        layers.append(layer)
    return layers


def _attach(layer: nn.Module, patch: LoRAPatch, path: str | Path) -> None:
    """Append `patch` to the layer's weight patches (a new list: class-level defaults are shared)."""
    if not hasattr(layer, "weight_function"):
        raise CheckpointError(
            f"{path}: layer {patch.module} ({type(layer).__name__}) takes no weight patches; build the model with "
            "operations whose Linear applies `weight_function` (the engine default or ComfyUI's ops)"
        )
    layer.weight_function = [*layer.weight_function, patch]


def apply_lora(model: nn.Module, path: str | Path, strength: float = 1.0, merge: bool = False) -> LoRAInfo:
    """Apply a LoRA file to `model`: merged into dense weights, or as weight patches on any layer (on the fly).

    merge_lora on quantised layers is refused: merging would mean re-quantising them."""
    info = LoRAInfo(str(path), strength, merge)
    dtype = model_dtype(model)
    entries = read_lora(path)
    info.distillation = is_distillation_lora(model, path)
    layers = _targets(model, entries, info, path)
    quantized = [e.module for e, layer in zip(entries, layers, strict=True) if isinstance(layer, QuantizedLinear)]
    if merge and quantized:
        formats = {layer.format_name for layer in layers if isinstance(layer, QuantizedLinear)}
        raise _refuse_merge(path, quantized, formats)
    for entry, layer in zip(entries, layers, strict=True):
        if layer is None:
            continue
        info.modules.append(entry.module)
        info.rank, info.alpha_scales = entry.rank, sorted({*info.alpha_scales, entry.alpha_scale})
        if merge:
            with torch.no_grad():
                merged = layer.weight.float() + strength * entry.delta_weight().to(layer.weight.device)
                layer.weight.copy_(merged.to(layer.weight.dtype))
            continue
        device = next(t.device for t in (*layer.parameters(), *layer.buffers()))
        _attach(layer, LoRAPatch(entry, strength, dtype, device), path)
    if not info.modules:
        raise CheckpointError(f"{path}: none of its {len(info.skipped)} target layers exist in this model")
    if info.skipped:
        log.warning(
            "LoRA %s: %d target layers not in the model: %s", path, len(info.skipped), summarize_keys(info.skipped)
        )
    return info


def lora_patches(module: nn.Module) -> list[LoRAPatch]:
    """The LoRA patches among a layer's weight patches."""
    return [f for f in getattr(module, "weight_function", ()) if isinstance(f, LoRAPatch)]


def remove_lora(model: nn.Module) -> int:
    """Detach every on-the-fly LoRA patch (merged weights stay merged); returns how many were removed."""
    removed = 0
    for module in model.modules():
        patches = lora_patches(module)
        if patches:
            module.weight_function = [f for f in module.weight_function if not isinstance(f, LoRAPatch)]
            removed += len(patches)
    return removed
