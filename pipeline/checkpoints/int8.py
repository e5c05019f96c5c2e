"""Official int8 weight-only format: `X.weight_int8` (int8 [out, in]) + `X.weight_scale` (fp32 [out]) + `X.bias`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .quantized import QuantizedLinear, frozen, quantized_layers, set_submodule

# int8 symmetric range: scale = max|W| / 127 per output row.
INT8_MAX = 127.0
# The reference clamps tiny row maxima so all-zero rows do not divide by zero.
MIN_SCALE = 1e-8
# Linears the official quantiser leaves dense (output projection, precision-sensitive).
DEFAULT_SKIP = ("final_layer.linear",)
INT8_SUFFIX = ".weight_int8"


class Int8Linear(QuantizedLinear):
    """Linear holding int8 weights and per-row fp32 scales (frozen parameters), dequantised at every call."""

    stored_names = ("weight_int8", "weight_scale")
    format_name = "int8"

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        self.weight_int8 = frozen(torch.zeros(out_features, in_features, dtype=torch.int8, device=device))
        self.weight_scale = frozen(torch.zeros(out_features, dtype=torch.float32, device=device))

    def dequantize_from(self, stored: dict[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        """W = q.to(dtype) * scale.to(dtype)[:, None] (the reference's per-call dequantisation), multiplied in place:
        the same values with one dense copy of the layer in memory instead of two."""
        return stored["weight_int8"].to(dtype).mul_(stored["weight_scale"].to(dtype)[:, None])


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-row symmetric int8: (q int8 [out, in], scale fp32 [out]) as the official quantiser."""
    w = weight.float()
    scale = w.abs().amax(dim=1).clamp(min=MIN_SCALE) / INT8_MAX
    q = (w / scale[:, None]).round().clamp(-INT8_MAX - 1, INT8_MAX).to(torch.int8)
    return q, scale


def swap_to_int8(
    model: nn.Module, names: Iterable[str], device: Any = "meta", dtype: Any = None, layer_cls: type = Int8Linear
) -> None:
    """Replace the Linear modules `names` by empty int8 layers (`layer_cls`, an Int8Linear) of the same geometry."""
    for name in names:
        linear = model.get_submodule(name)
        layer = layer_cls(linear.in_features, linear.out_features, linear.bias is not None, device=device, dtype=dtype)
        set_submodule(model, name, layer)


def int8_targets(model: nn.Module, skip: tuple[str, ...] = DEFAULT_SKIP) -> list[str]:
    """Names of the Linear layers the official quantiser converts (all but those matching a `skip` pattern)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not any(p in n for p in skip)]


def quantize_model(
    model: nn.Module, skip: tuple[str, ...] = DEFAULT_SKIP, bf16_dense: bool = False, layer_cls: type = Int8Linear
) -> list[str]:
    """Quantise every nn.Linear in place (except names containing a `skip` pattern); returns the quantised names.

    Biases are rounded to bf16 like the official quantiser stores them, then kept in the layer's dtype. With
    `bf16_dense` the remaining float parameters are rounded through bf16 too, which is what saving the official
    int8 format and loading it back does (the same model as an official int8 folder).
    """
    names = int8_targets(model, skip)
    for name in names:
        linear = model.get_submodule(name)
        weight = linear.weight.detach()
        layer = layer_cls(
            linear.in_features, linear.out_features, linear.bias is not None, device=weight.device, dtype=weight.dtype
        )
        q, scale = quantize_weight(weight)
        layer.weight_int8, layer.weight_scale = frozen(q), frozen(scale)
        if linear.bias is not None:
            layer.bias = frozen(linear.bias.detach().to(torch.bfloat16).to(weight.dtype))
        set_submodule(model, name, layer)
    if bf16_dense:
        stored = {id(p) for layer in quantized_layers(model).values() for p in layer.parameters()}
        with torch.no_grad():
            for param in model.parameters():
                if param.is_floating_point() and id(param) not in stored:
                    param.copy_(param.to(torch.bfloat16))
    return names
