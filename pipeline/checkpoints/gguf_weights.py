"""GGUF (ggml) quantised weights dequantised in torch, and the Linear that keeps them as raw blocks.

The block layouts are ggml's (ggml-common.h); each function mirrors, operation for operation in float32, the numpy
reference `gguf.quants.<TYPE>.dequantize_blocks` of the `gguf` package, so both give the same bits. Block sizes come
from `gguf.GGML_QUANT_SIZES`. Q4_K_M / Q5_K_M files are mixes of these tensor types, not types of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gguf
import torch

from .quantized import QuantizedLinear, frozen

QK_K = gguf.QK_K  # elements per K-quant super-block (256)
K_SCALE_BYTES = 12  # packed 6-bit scales and mins of the 8 sub-blocks of a Q4_K / Q5_K super-block
# Float storage types: read as plain torch tensors, never kept as blocks.
FLOAT_TYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def _f16(blocks: torch.Tensor, start: int) -> torch.Tensor:
    """The fp16 at byte `start` of every block, as float32 [n, 1]."""
    return blocks[:, start : start + 2].contiguous().view(torch.float16).to(torch.float32)


def _shifted(data: torch.Tensor, group: int, shifts: list[int], mask: int) -> torch.Tensor:
    """Bit fields of uint8 `data` [n, k*group]: for each group of bytes, `(byte >> s) & mask` for every shift s."""
    shift = torch.tensor(shifts, dtype=torch.uint8, device=data.device).view(1, 1, -1, 1)
    return (data.reshape(data.shape[0], -1, 1, group) >> shift) & mask


def _legacy(blocks: torch.Tensor, with_min: bool, high_bits: bool) -> torch.Tensor:
    """Q4_0 / Q4_1 / Q5_0 / Q5_1: d (+ m) fp16, (+ 32 high bits), 16 bytes of nibbles per 32 values."""
    n = blocks.shape[0]
    d = _f16(blocks, 0)
    offset = 4 if with_min else 2
    qh = None
    if high_bits:
        bits = blocks[:, offset : offset + 4].contiguous().view(torch.int32)
        qh = ((bits >> torch.arange(32, dtype=torch.int32, device=blocks.device)) & 1).to(torch.uint8)
        offset += 4
    q = _shifted(blocks[:, offset:], 16, [0, 4], 0x0F).reshape(n, -1)
    if qh is not None:
        q = q | (qh << 4)
    if with_min:
        return d * q.to(torch.float32) + _f16(blocks, 2)
    zero = 16 if high_bits else 8  # symmetric types store q + 2^(bits-1)
    return d * (q.to(torch.int8) - zero).to(torch.float32)


def _q8_0(blocks: torch.Tensor) -> torch.Tensor:
    """Q8_0: d fp16 + 32 int8 per block."""
    return blocks[:, 2:].contiguous().view(torch.int8).to(torch.float32) * _f16(blocks, 0)


def _k_scales(scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 8 six-bit scales and mins packed in 12 bytes (ggml's get_scale_min_k4), as float32 [n, 8, 1]."""
    n = scales.shape[0]
    d, m, m_d = scales.reshape(n, 3, 4).unbind(1)
    sc = torch.cat([d & 0x3F, (m_d & 0x0F) | ((d >> 2) & 0x30)], dim=-1)
    mn = torch.cat([m & 0x3F, (m_d >> 4) | ((m >> 2) & 0x30)], dim=-1)
    return sc.to(torch.float32).reshape(n, -1, 1), mn.to(torch.float32).reshape(n, -1, 1)


def _q4_k_q5_k(blocks: torch.Tensor, high_bits: bool) -> torch.Tensor:
    """Q4_K / Q5_K: d, dmin fp16, 12 scale bytes, (+ 32 high-bit bytes), 128 nibble bytes per 256 values."""
    n = blocks.shape[0]
    sc, mn = _k_scales(blocks[:, 4 : 4 + K_SCALE_BYTES])
    d = _f16(blocks, 0).reshape(n, 1, 1) * sc
    dm = _f16(blocks, 2).reshape(n, 1, 1) * mn
    start = 4 + K_SCALE_BYTES
    q = _shifted(blocks[:, start + (QK_K // 8 if high_bits else 0) :], 32, [0, 4], 0x0F).reshape(n, -1, 32)
    if high_bits:
        qh = _shifted(blocks[:, start : start + QK_K // 8], 32, list(range(8)), 0x01).reshape(n, -1, 32)
        q = q | (qh << 4)
    return (d * q.to(torch.float32) - dm).reshape(n, QK_K)


def _q6_k(blocks: torch.Tensor) -> torch.Tensor:
    """Q6_K: 128 low-nibble bytes, 64 high-2-bit bytes, 16 int8 scales, d fp16 per 256 values."""
    n = blocks.shape[0]
    low_end, high_end, scale_end = QK_K // 2, QK_K // 2 + QK_K // 4, QK_K // 2 + QK_K // 4 + QK_K // 16
    scales = blocks[:, high_end:scale_end].contiguous().view(torch.int8).to(torch.float32)
    d = (_f16(blocks, scale_end) * scales).reshape(n, QK_K // 16, 1)
    ql = _shifted(blocks[:, :low_end], 64, [0, 4], 0x0F).reshape(n, -1, 32)
    qh = _shifted(blocks[:, low_end:high_end], 32, [0, 2, 4, 6], 0x03).reshape(n, -1, 32)
    q = ((ql | (qh << 4)).to(torch.int8) - 32).reshape(n, QK_K // 16, -1).to(torch.float32)
    return (d * q).reshape(n, QK_K)


DEQUANTIZERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Q4_0": lambda b: _legacy(b, with_min=False, high_bits=False),
    "Q4_1": lambda b: _legacy(b, with_min=True, high_bits=False),
    "Q5_0": lambda b: _legacy(b, with_min=False, high_bits=True),
    "Q5_1": lambda b: _legacy(b, with_min=True, high_bits=True),
    "Q8_0": _q8_0,
    "Q4_K": lambda b: _q4_k_q5_k(b, high_bits=False),
    "Q5_K": lambda b: _q4_k_q5_k(b, high_bits=True),
    "Q6_K": _q6_k,
}
SUPPORTED_TYPES = tuple(DEQUANTIZERS) + tuple(FLOAT_TYPES)


def block_geometry(type_name: str) -> tuple[int, int]:
    """(values per block, bytes per block) of a GGUF tensor type."""
    return gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name]]


def stored_shape(type_name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of the raw uint8 blocks of a quantised tensor of logical `shape` (rows kept, last dim in bytes)."""
    values, size = block_geometry(type_name)
    return (*shape[:-1], shape[-1] // values * size)


def dequantize(raw: torch.Tensor, type_name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """The dense tensor of logical `shape` in `dtype` from raw GGUF bytes (float32 math, then one cast)."""
    if type_name in FLOAT_TYPES:
        return raw.contiguous().view(torch.uint8).view(FLOAT_TYPES[type_name]).reshape(shape).to(dtype)
    _, size = block_geometry(type_name)
    blocks = raw.contiguous().view(torch.uint8).reshape(-1, size)
    return DEQUANTIZERS[type_name](blocks).reshape(shape).to(dtype)


class GGUFLinear(QuantizedLinear):
    """Linear holding GGUF blocks (uint8 [out, row bytes]) of one tensor type, dequantised at every call."""

    stored_names = ("weight",)
    format_name = "gguf"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        type_name: str = "Q8_0",
    ) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        self.type_name = type_name
        raw = stored_shape(type_name, (out_features, in_features))
        self.weight = frozen(torch.zeros(raw, dtype=torch.uint8, device=device))

    def logical_shapes(self) -> dict[str, tuple[int, ...]]:
        """The weight as the GGUF header lists it: the dense [out, in]."""
        return {"weight": (self.out_features, self.in_features)}

    def dequantize_from(self, stored: dict[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        """The dense [rows, in] weight in `dtype` (all rows, or the block of rows `stored` holds)."""
        return dequantize(stored["weight"], self.type_name, (stored["weight"].shape[0], self.in_features), dtype)

    def extra_repr(self) -> str:
        """Geometry and GGUF type."""
        return super().extra_repr() + f" {self.type_name}"
