"""Official int8 weight-only format: `X.weight_int8` (int8 [out, in]) + `X.weight_scale` (fp32 [out]) + `X.bias`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# int8 symmetric range: scale = max|W| / 127 per output row.
INT8_MAX = 127.0
# The reference clamps tiny row maxima so all-zero rows do not divide by zero.
MIN_SCALE = 1e-8
# Linears the official quantiser leaves dense (output projection, precision-sensitive).
DEFAULT_SKIP = ("final_layer.linear",)
INT8_SUFFIX = ".weight_int8"
SCALE_SUFFIX = ".weight_scale"


class Int8Linear(nn.Module):
    """Linear holding int8 weights and per-row scales, dequantised to the activation dtype at every call."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("weight_scale", torch.zeros(out_features, dtype=torch.float32, device=device))
        bias_tensor = torch.zeros(out_features, dtype=dtype or torch.bfloat16, device=device) if bias else None
        self.register_buffer("bias", bias_tensor)

    def dequantized_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """W = q.to(dtype) * scale.to(dtype)[:, None] (the reference's per-call dequantisation)."""
        return self.weight_int8.to(dtype) * self.weight_scale.to(dtype)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """F.linear with the weight dequantised to x's dtype (float32 inside the fp32 islands)."""
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.dequantized_weight(x.dtype).to(x.device), bias)

    def extra_repr(self) -> str:
        """Geometry shown in the module repr."""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-row symmetric int8: (q int8 [out, in], scale fp32 [out]) as the official quantiser."""
    w = weight.float()
    scale = w.abs().amax(dim=1).clamp(min=MIN_SCALE) / INT8_MAX
    q = (w / scale[:, None]).round().clamp(-INT8_MAX - 1, INT8_MAX).to(torch.int8)
    return q, scale


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def swap_to_int8(model: nn.Module, names: Iterable[str], device: Any = "meta", dtype: Any = None) -> None:
    """Replace the Linear modules `names` by empty Int8Linear of the same geometry (for loading int8 weights)."""
    for name in names:
        linear = model.get_submodule(name)
        layer = Int8Linear(linear.in_features, linear.out_features, linear.bias is not None, device, dtype)
        _set_submodule(model, name, layer)


def int8_targets(model: nn.Module, skip: tuple[str, ...] = DEFAULT_SKIP) -> list[str]:
    """Names of the Linear layers the official quantiser converts (all but those matching a `skip` pattern)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not any(p in n for p in skip)]


def quantize_model(model: nn.Module, skip: tuple[str, ...] = DEFAULT_SKIP, bf16_dense: bool = False) -> list[str]:
    """Quantise every nn.Linear in place (except names containing a `skip` pattern); returns the quantised names.

    Biases are rounded to bf16 like the official quantiser stores them, then kept in the layer's dtype. With
    `bf16_dense` the remaining float parameters are rounded through bf16 too, which is what saving the official
    int8 format and loading it back does (the same model as an official int8 folder).
    """
    names = int8_targets(model, skip)
    for name in names:
        linear = model.get_submodule(name)
        weight = linear.weight.detach()
        layer = Int8Linear(
            linear.in_features, linear.out_features, linear.bias is not None, weight.device, weight.dtype
        )
        layer.weight_int8, layer.weight_scale = quantize_weight(weight)
        if linear.bias is not None:
            layer.bias = linear.bias.detach().to(torch.bfloat16).to(weight.dtype)
        _set_submodule(model, name, layer)
    if bf16_dense:
        with torch.no_grad():
            for param in model.parameters():
                if param.is_floating_point():
                    param.copy_(param.to(torch.bfloat16))
    return names


def int8_layer_names(keys: Iterable[str]) -> list[str]:
    """Module names that a checkpoint stores in int8 (those with a `.weight_int8` tensor)."""
    return sorted(k[: -len(INT8_SUFFIX)] for k in keys if k.endswith(INT8_SUFFIX))
