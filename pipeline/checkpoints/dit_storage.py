"""How a DiT checkpoint stores each layer: which Linears stay quantised (int8, fp8, GGUF) and how tensors convert.

Detected from tensor names and storage types only: `X.weight_int8` is the official int8 layout, a float8 `X.weight`
is ComfyUI's (scaled) fp8, a GGUF block type is GGUF. Quantised tensors of layers that are not Linears (the patch
embedding, norms) are few and small: they are dequantised once on load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError, summarize_keys
from .fp8 import FP8_CODES, INPUT_SCALE, MARKER, SCALE, Fp8Linear, dequantize_fp8, is_fp8_code
from .gguf_weights import FLOAT_TYPES, SUPPORTED_TYPES, dequantize
from .int8 import INT8_SUFFIX
from .quantized import frozen, set_submodule
from .weight_files import WeightSource, read_file_tensors

WEIGHT = ".weight"
# Floating dtypes a scale may be stored in; quantised storage (int8, fp8, GGUF bytes) is kept as it is.
COMPUTE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass
class StoragePlan:
    """Quantised layers to build (name -> namespace class name, extra constructor arguments) and conversions."""

    layers: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()  # keys a plain (unscaled) fp8 file may lack
    int8: bool = False
    stored: set[str] = field(default_factory=set)  # stored tensors of the quantised layers, once built
    dense_dequant: dict[str, Callable[[torch.Tensor, torch.dtype], torch.Tensor]] = field(default_factory=dict)

    def converter(self, dtype: torch.dtype) -> Callable[[str, torch.Tensor], torch.Tensor]:
        """Per-tensor policy: stored tensors of quantised layers as stored (their scales in float32), the rest in
        `dtype`.

        In the int8 format the non-quantised tensors are bf16 (the official loader casts them to bf16), so they are
        rounded through bf16 first even when a file stores them in float32.
        """

        def convert(key: str, tensor: torch.Tensor) -> torch.Tensor:
            """The tensor as it is kept in the model."""
            if key in self.dense_dequant:
                return self.dense_dequant[key](tensor, dtype)
            if key in self.stored:
                return tensor.float() if tensor.dtype in COMPUTE_DTYPES else tensor
            if self.int8 and tensor.is_floating_point():
                tensor = tensor.to(torch.bfloat16)
            return tensor.to(dtype) if tensor.is_floating_point() else tensor

        return convert


def _is_linear(model: nn.Module, name: str) -> bool:
    try:
        return isinstance(model.get_submodule(name), nn.Linear)
    except AttributeError:
        return False


def _plan_fp8(source: WeightSource, model: nn.Module, plan: StoragePlan) -> None:
    """fp8 weights: Linears become Fp8Linear; any other fp8 tensor is dequantised with its scale on load."""
    for key in [k for k in source.tensors if k == MARKER or k.endswith("." + INPUT_SCALE)]:
        del source.tensors[key]  # the marker and activation scales are not used by a weight-only dequantisation
    optional = set()
    for key, info in list(source.tensors.items()):
        if not (is_fp8_code(info.dtype) and key.endswith(WEIGHT)):
            continue
        name = key[: -len(WEIGHT)]
        scale = source.tensors.get(f"{name}.{SCALE}")
        if _is_linear(model, name):
            shape = scale.shape if scale is not None else ()
            plan.layers[name] = ("Fp8Linear", {"fp8_dtype": FP8_CODES[info.dtype], "scale_shape": shape})
            optional.add(f"{name}.{SCALE}")
            continue
        value = None
        if scale is not None:
            value = read_file_tensors(scale.file, [scale])[scale.stored_name]
            del source.tensors[f"{name}.{SCALE}"]
        plan.dense_dequant[key] = lambda t, dtype, s=value: dequantize_fp8(t, s, dtype)
    plan.optional = frozenset(optional)


def _plan_gguf(source: WeightSource, model: nn.Module, plan: StoragePlan) -> None:
    """GGUF block types: Linear weights become GGUFLinear; others are dequantised on load."""
    unsupported = sorted({f"{k} ({i.dtype})" for k, i in source.tensors.items() if i.dtype not in SUPPORTED_TYPES})
    if unsupported:
        raise CheckpointError(
            f"{source.root}: GGUF tensor types this loader does not dequantise: {summarize_keys(unsupported)}; "
            f"supported: {', '.join(SUPPORTED_TYPES)}"
        )
    for key, info in source.tensors.items():
        if info.dtype in FLOAT_TYPES:
            continue
        name = key[: -len(WEIGHT)] if key.endswith(WEIGHT) else ""
        if name and _is_linear(model, name) and len(info.shape) == 2:
            plan.layers[name] = ("GGUFLinear", {"type_name": info.dtype})
        else:
            plan.dense_dequant[key] = lambda t, dtype, i=info: dequantize(t, i.dtype, i.shape, dtype)


def plan_storage(source: WeightSource, model: nn.Module) -> StoragePlan:
    """The storage plan of `source` for the (meta) dense `model`; drops tensors no layer keeps (fp8 markers)."""
    plan = StoragePlan()
    int8 = sorted(k[: -len(INT8_SUFFIX)] for k in source.tensors if k.endswith(INT8_SUFFIX))
    plan.layers.update({name: ("Int8Linear", {}) for name in int8})
    plan.int8 = bool(int8)
    if source.gguf:
        _plan_gguf(source, model, plan)
    else:
        _plan_fp8(source, model, plan)
    return plan


def swap_quantized(model: nn.Module, plan: StoragePlan, ops: Any, dtype: torch.dtype) -> None:
    """Replace the planned Linears by empty quantised layers from the namespace `ops` (on the meta device)."""
    for name, (class_name, kwargs) in plan.layers.items():
        linear = model.get_submodule(name)
        layer_cls = getattr(ops, class_name)
        layer = layer_cls(
            linear.in_features, linear.out_features, linear.bias is not None, device="meta", dtype=dtype, **kwargs
        )
        set_submodule(model, name, layer)
        plan.stored.update(f"{name}.{part}" for part in layer.stored_names)


def fill_default_scales(model: nn.Module, device: str | torch.device) -> None:
    """Scale 1 for fp8 layers of a plain (unscaled) fp8 file, whose scales were not in the checkpoint."""
    for module in model.modules():
        scale = getattr(module, SCALE, None) if isinstance(module, Fp8Linear) else None
        if scale is not None and scale.is_meta:
            setattr(module, SCALE, frozen(torch.ones(scale.shape, dtype=torch.float32, device=device)))
