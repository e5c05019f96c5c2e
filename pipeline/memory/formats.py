"""Weight formats: which storage every DiT tensor gets in each format, and the bytes of a tensor in a storage.

Storages: "fp32", "bf16", "fp16", "fp8" (1 byte), "int8" (the official layout: int8 weight + fp32 scale per output
row) and the GGUF block types "q8_0", "q6_k", "q5_k", "q4_k", "q4_0".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .inventory import Layer

ELEMENT_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}
SCALE_BYTES = 4  # int8 per-row scales and ComfyUI's fp8 `scale_weight` are float32
GGUF_TYPES = ("q8_0", "q6_k", "q5_k", "q4_k", "q4_0")
# ggml's block layouts (ggml-common.h, the same numbers as gguf.GGML_QUANT_SIZES): (weights per block, bytes per
# block). Used only when the gguf package is not importable.
GGML_BLOCKS_FALLBACK = {
    "q8_0": (32, 34),  # fp16 scale + 32 int8
    "q6_k": (256, 210),  # 128 low nibbles + 64 high bits + 16 int8 scales + fp16 scale
    "q5_k": (256, 176),  # fp16 scale and min + 12 packed 6-bit scales + 32 high bits + 128 nibbles
    "q4_k": (256, 144),  # fp16 scale and min + 12 packed 6-bit scales + 128 nibbles
    "q4_0": (32, 18),  # fp16 scale + 16 nibbles
}
# The official int8 quantiser (and our fp8 layout) leave this Linear dense: pipeline.checkpoints.int8.DEFAULT_SKIP.
DENSE_LINEARS = ("final_layer.linear",)


def ggml_blocks() -> dict[str, tuple[int, int]]:
    """(block size, type size) per GGUF type: gguf's GGML_QUANT_SIZES when importable, else ggml's constants."""
    try:
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    except ImportError:
        return dict(GGML_BLOCKS_FALLBACK)
    return {name: tuple(GGML_QUANT_SIZES[GGMLQuantizationType[name.upper()]]) for name in GGUF_TYPES}


@dataclass(frozen=True)
class WeightFormat:
    """How a DiT file of this format stores its tensors."""

    name: str
    linear: str  # storage of the quantisable Linear weights
    dense: str = "bf16"  # storage of every other tensor (in GGUF files: of those with 2+ dimensions)
    more_bits: str | None = None  # GGUF "_M" mixes: storage of the FFN down-projection in 'more bits' blocks

    @property
    def gguf(self) -> bool:
        """True for GGUF block formats."""
        return self.linear in GGUF_TYPES


FORMATS = {
    "fp32": WeightFormat("fp32", "fp32", "fp32"),
    "bf16": WeightFormat("bf16", "bf16"),
    "fp16": WeightFormat("fp16", "fp16", "fp16"),
    "int8": WeightFormat("int8", "int8"),
    "fp8": WeightFormat("fp8", "fp8"),
    **{f"gguf-{t}": WeightFormat(f"gguf-{t}", t) for t in GGUF_TYPES},
    # llama.cpp's Q4_K_M / Q5_K_M recipes (llama_tensor_get_type): the FFN down-projection of the 'use_more_bits'
    # layers is stored one step up, as Q6_K; the DiT has no separate attention V projection to promote.
    "gguf-q4_k_m": WeightFormat("gguf-q4_k_m", "q4_k", more_bits="q6_k"),
    "gguf-q5_k_m": WeightFormat("gguf-q5_k_m", "q5_k", more_bits="q6_k"),
}
FFN_DOWN = ".ffn.w2"


def weight_format(name: str) -> WeightFormat:
    """The format called `name` ("bf16", "int8", "gguf-q4_k_m", ...; "q4_k_m" alone also works)."""
    key = name.lower()
    key = key if key in FORMATS or key.startswith("gguf-") else f"gguf-{key}"
    if key not in FORMATS:
        raise ValueError(f"unknown weight format {name!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[key]


def use_more_bits(layer: int, layers: int) -> bool:
    """llama.cpp's use_more_bits(i, n): the first and last eighth of the layers and every third one between."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def tensor_bytes(shape: tuple[int, ...], storage: str) -> int:
    """Bytes of one tensor of `shape` stored as `storage` (GGUF: whole blocks along the last dimension)."""
    count = math.prod(shape)
    if storage in GGUF_TYPES:
        block, size = ggml_blocks()[storage]
        if shape[-1] % block:
            raise ValueError(f"a {storage} tensor needs rows that are multiples of {block}, got shape {shape}")
        return count // block * size
    return count * ELEMENT_BYTES[storage]


def linear_storage(layer: Layer, fmt: WeightFormat, block: int | None, depth: int) -> str:
    """Storage of a Linear weight in `fmt` (block index or None for top-level layers)."""
    if any(layer.name.startswith(skip) for skip in DENSE_LINEARS):
        return fmt.dense
    if not fmt.gguf:
        return fmt.linear
    storage = fmt.linear
    if fmt.more_bits and block is not None and layer.name.endswith(FFN_DOWN) and use_more_bits(block, depth):
        storage = fmt.more_bits
    # ggml quantises only rows that are whole blocks; other tensors keep the file's float type.
    return storage if layer.shape[-1] % ggml_blocks()[storage][0] == 0 else fmt.dense


def layer_tensors(layer: Layer, fmt: WeightFormat, block: int | None, depth: int) -> list[tuple[str, int]]:
    """(state-dict name, bytes) of every tensor the layer holds in `fmt`."""
    if layer.kind != "linear":
        return [(name, tensor_bytes(shape, vector_storage(shape, fmt))) for name, shape in layer.tensors]
    storage = linear_storage(layer, fmt, block, depth)
    out_features = layer.shape[0]
    bias_bytes = tensor_bytes((out_features,), vector_storage((out_features,), fmt))
    bias = [(f"{layer.name}.bias", bias_bytes)] if layer.bias else []
    if storage == "int8":
        scale = (f"{layer.name}.weight_scale", out_features * SCALE_BYTES)
        return [(f"{layer.name}.weight_int8", tensor_bytes(layer.shape, "int8")), scale, *bias]
    if storage == "fp8":
        scale = (f"{layer.name}.scale_weight", SCALE_BYTES)  # one float32 scale per tensor (ComfyUI scaled fp8)
        return [(f"{layer.name}.weight", tensor_bytes(layer.shape, "fp8")), scale, *bias]
    return [(f"{layer.name}.weight", tensor_bytes(layer.shape, storage)), *bias]


def vector_storage(shape: tuple[int, ...], fmt: WeightFormat) -> str:
    """Storage of a dense tensor: GGUF files keep 1-D tensors (biases, norms) in F32, as ggml does."""
    return "fp32" if fmt.gguf and len(shape) == 1 else fmt.dense
