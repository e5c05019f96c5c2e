"""ComfyUI-style "scaled fp8" weights: `X.weight` in float8 (e4m3fn or e5m2) with a `X.scale_weight`, kept in fp8.

ComfyUI's scaled-fp8 files (e.g. `umt5_xxl_fp8_e4m3fn_scaled.safetensors`, Wan `*_fp8_scaled` DiTs) carry a
`scaled_fp8` marker tensor; the dense weight is `weight.float() * scale_weight` (ComfyUI's `convert_weight` in
comfy/ops.py `scaled_fp8_ops`). An fp8 weight without a scale (a plain fp8 file) has the scale 1.
"""

from __future__ import annotations

from typing import Any

import torch

from .quantized import QuantizedLinear, frozen

MARKER = "scaled_fp8"  # top-level marker tensor of ComfyUI's scaled fp8 files
SCALE = "scale_weight"  # per-layer dequantisation scale (a scalar, or one per output row)
INPUT_SCALE = "scale_input"  # activation scale for fp8 matmuls; a weight-only dequantisation does not use it
# safetensors dtype codes of the float8 formats torch can hold.
FP8_CODES = {
    code: getattr(torch, name)
    for code, name in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"))
    if hasattr(torch, name)
}
FP8_DTYPES = tuple(FP8_CODES.values())


def dequantize_fp8(weight: torch.Tensor, scale: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """`weight.float() * scale` (per row when the scale has one value per output row), then cast to `dtype`."""
    dense = weight.to(torch.float32)
    if scale is not None:
        scale = scale.to(torch.float32)
        dense = dense * (scale.reshape(-1, 1) if scale.numel() > 1 else scale.reshape(()))
    return dense.to(dtype)


class Fp8Linear(QuantizedLinear):
    """Linear whose weight stays in float8 with its scale; dequantised to the input's dtype at every call."""

    stored_names = ("weight", SCALE)
    format_name = "fp8"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        fp8_dtype: torch.dtype = FP8_DTYPES[0],
        scale_shape: tuple[int, ...] = (),
    ) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        weight_name, scale_name = self.stored_names
        setattr(self, weight_name, frozen(torch.zeros(out_features, in_features, dtype=fp8_dtype, device=device)))
        setattr(self, scale_name, frozen(torch.ones(scale_shape, dtype=torch.float32, device=device)))

    def dequantize_from(self, stored: dict[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        """weight.float() * scale_weight, in `dtype`."""
        weight_name, scale_name = self.stored_names
        return dequantize_fp8(stored[weight_name], stored[scale_name], dtype)


def is_fp8_code(code: str) -> bool:
    """True for a safetensors float8 dtype code."""
    return code in FP8_CODES
