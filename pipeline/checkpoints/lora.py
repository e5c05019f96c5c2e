"""Official LongCat LoRA files (`lora___lorahyphen___...`), applied on the fly (forward hook) or merged, and the
recognition of the v1.5 DMD distillation LoRA (which decides the sampler's distilled auto mode)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from ..sampling.mode import LORA_DISTILLATION, LORA_OTHER
from ..versions import VERSIONS
from .errors import CheckpointError, summarize_keys
from .int8 import Int8Linear

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
    on_the_fly: list[str] = field(default_factory=list)  # int8 layers cannot be merged; they use the hook
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
    """Tensor names and shapes of a safetensors file, read from its header (no weights loaded)."""
    with safe_open(str(path), framework="pt") as handle:
        return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118 - safe_open is not a dict


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
    try:
        handle_ctx = safe_open(str(path), framework="pt")
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read as safetensors ({exc})") from exc
    entries = []
    with handle_ctx as handle:
        for name, parts in sorted(_group_keys(list(handle.keys()), path).items()):
            ups = [handle.get_tensor(parts[k]) for k in sorted(k for k in parts if k.startswith("up"))]
            if UP in parts:
                ups = [handle.get_tensor(parts[UP])]
            if DOWN not in parts or not ups or ALPHA not in parts:
                missing = [s for s in (DOWN, UP, ALPHA) if s not in parts and not (s == UP and ups)]
                raise CheckpointError(f"{path}: LoRA module {name} lacks {', '.join(missing)}")
            entry = LoRAEntry(
                module_name(name), handle.get_tensor(parts[DOWN]), ups, float(handle.get_tensor(parts[ALPHA]))
            )
            if entry.down.shape[0] != entry.rank * len(ups):
                raise CheckpointError(
                    f"{path}: {name} down has {entry.down.shape[0]} rows for {len(ups)} x rank {entry.rank}"
                )
            entries.append(entry)
    return entries


class LoRAAdapter(nn.Module):
    """Adds strength * alpha_scale * up(down(x)) to a layer's output; weights are non-persistent buffers."""

    def __init__(self, entry: LoRAEntry, strength: float, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.scale = strength * entry.alpha_scale
        self.parts = len(entry.ups)
        self.register_buffer("down", entry.down.to(device=device, dtype=dtype), persistent=False)
        for index, up in enumerate(entry.ups):
            self.register_buffer(f"up{index}", up.to(device=device, dtype=dtype), persistent=False)
        self.handle: torch.utils.hooks.RemovableHandle | None = None

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """The LoRA branch for input x, computed in x's dtype."""
        hidden = F.linear(x, self.down.to(x.dtype)).chunk(self.parts, dim=-1)
        outs = [F.linear(h, getattr(self, f"up{i}").to(x.dtype)) for i, h in enumerate(hidden)]
        return torch.cat(outs, dim=-1) * self.scale

    def hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        """Forward hook on the target layer."""
        return output + self.delta(args[0]).to(output.dtype)


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype LoRA weights are kept in: that of the model's first floating parameter (as the reference)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _check_shape(entry: LoRAEntry, layer: nn.Module, path: str | Path) -> None:
    out_rows = sum(up.shape[0] for up in entry.ups)
    if (out_rows, entry.down.shape[1]) != (layer.out_features, layer.in_features):
        raise CheckpointError(
            f"{path}: LoRA for {entry.module} is [{out_rows}, {entry.down.shape[1]}] but the layer is "
            f"[{layer.out_features}, {layer.in_features}]; the LoRA belongs to another model"
        )


def apply_lora(model: nn.Module, path: str | Path, strength: float = 1.0, merge: bool = False) -> LoRAInfo:
    """Apply a LoRA file to `model`: merged into dense weights, or as forward hooks (always for int8 layers)."""
    info = LoRAInfo(str(path), strength, merge)
    dtype = model_dtype(model)
    entries = read_lora(path)
    info.distillation = is_distillation_lora(model, path)
    for entry in entries:
        try:
            layer = model.get_submodule(entry.module)
        except AttributeError:
            info.skipped.append(entry.module)
            continue
        if not hasattr(layer, "in_features"):
            info.skipped.append(entry.module)
            continue
        _check_shape(entry, layer, path)
        info.modules.append(entry.module)
        info.rank, info.alpha_scales = entry.rank, sorted({*info.alpha_scales, entry.alpha_scale})
        if merge and not isinstance(layer, Int8Linear):
            with torch.no_grad():
                merged = layer.weight.float() + strength * entry.delta_weight().to(layer.weight.device)
                layer.weight.copy_(merged.to(layer.weight.dtype))
            continue
        device = next(t.device for t in (*layer.parameters(), *layer.buffers()))
        adapter = LoRAAdapter(entry, strength, dtype, device)
        layer.add_module(f"lora_{len([n for n, _ in layer.named_children() if n.startswith('lora_')])}", adapter)
        adapter.handle = layer.register_forward_hook(adapter.hook)
        if merge:
            info.on_the_fly.append(entry.module)
    if not info.modules:
        raise CheckpointError(f"{path}: none of its {len(info.skipped)} target layers exist in this model")
    if info.skipped:
        log.warning(
            "LoRA %s: %d target layers not in the model: %s", path, len(info.skipped), summarize_keys(info.skipped)
        )
    return info


def remove_lora(model: nn.Module) -> int:
    """Detach every on-the-fly LoRA adapter (merged weights stay merged); returns how many were removed."""
    removed = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LoRAAdapter):
                if child.handle is not None:
                    child.handle.remove()
                delattr(module, name)
                removed += 1
    return removed
