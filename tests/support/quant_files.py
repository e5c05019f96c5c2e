"""Quantised test data: GGUF blocks of every supported type, tiny GGUF and scaled-fp8 DiT files, and their
dequantised fp32 reference state dicts (computed with the `gguf` package's numpy code and the fp8 formula).

`gguf` quantises only the legacy types (Q4_0 ... Q8_0); K-type tensors are random blocks whose fp16 scales are
finite, so they need rows that are multiples of 256 values.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch
from safetensors.torch import save_file

from pipeline.checkpoints.weight_headers import GGUF_ORIG_SHAPE_KEY

# Byte offsets of the fp16 scales (d, and m / dmin) inside one block (ggml-common.h block_* structs).
FP16_OFFSETS = {
    "Q4_0": (0,),
    "Q4_1": (0, 2),
    "Q5_0": (0,),
    "Q5_1": (0, 2),
    "Q8_0": (0,),
    "Q4_K": (0, 2),
    "Q5_K": (0, 2),
    "Q6_K": (-2,),
}
LEGACY = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")
K_TYPES = ("Q4_K", "Q5_K", "Q6_K")
SCALE_RANGE = (1e-4, 2e-3)  # |fp16 scale|: small enough that random blocks give weights of a sane magnitude
FP8_MAX = 448.0  # largest float8_e4m3fn value


def qtype(name: str) -> gguf.GGMLQuantizationType:
    """The gguf enum member of a type name."""
    return gguf.GGMLQuantizationType[name]


def random_blocks(name: str, rows: int, cols: int, seed: int) -> np.ndarray:
    """uint8 [rows, row bytes] of random blocks of type `name` with finite, signed fp16 scales."""
    values, size = gguf.GGML_QUANT_SIZES[qtype(name)]
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(rows * cols // values, size), dtype=np.uint8)
    for offset in FP16_OFFSETS[name]:
        scale = rng.uniform(*SCALE_RANGE, size=blocks.shape[0]) * rng.choice([-1.0, 1.0], size=blocks.shape[0])
        start = offset % size
        blocks[:, start : start + 2] = scale.astype(np.float16).view(np.uint8).reshape(-1, 2)
    return blocks.reshape(rows, -1)


def reference_dequantize(raw: np.ndarray, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The `gguf` package's numpy dequantisation, as a float32 tensor of `shape`."""
    return torch.from_numpy(np.ascontiguousarray(gguf.quants.dequantize(raw, qtype(name)))).reshape(shape)


def pick_type(cols: int, index: int) -> str:
    """A block type for a row of `cols` values: K types when 256 divides it, legacy types when 32 does."""
    if cols % gguf.QK_K == 0:
        return K_TYPES[index % len(K_TYPES)]
    return LEGACY[index % len(LEGACY)]


def gguf_tensor(name: str, tensor: torch.Tensor, kind: str, seed: int) -> np.ndarray:
    """Raw blocks of `tensor` (2-D view) in type `kind`: legacy types quantise it, K types are random blocks."""
    matrix = tensor.reshape(tensor.shape[0], -1).float().numpy()
    if kind in LEGACY:
        return gguf.quants.quantize(matrix, qtype(kind))
    return random_blocks(kind, *matrix.shape, seed)


def write_gguf_dit(state: dict[str, torch.Tensor], path: Path, conv_key: str) -> dict[str, torch.Tensor]:
    """Write `state` as a GGUF DiT (Linear weights in mixed block types, the conv weight reshaped to 2-D and stored as
    Q8_0 with ComfyUI-GGUF's orig_shape metadata, the rest F32 / F16); returns the dequantised fp32 reference."""
    writer = gguf.GGUFWriter(str(path), "longcat_avatar")
    reference, types = {}, 0
    for index, (key, tensor) in enumerate(state.items()):
        if tensor.dim() == 2 and tensor.shape[1] % 32 == 0 or key == conv_key:
            kind = "Q8_0" if key == conv_key else pick_type(tensor.reshape(tensor.shape[0], -1).shape[1], types)
            types += key != conv_key
            raw = gguf_tensor(key, tensor, kind, seed=index)
            writer.add_tensor(key, raw, raw_dtype=qtype(kind))
            if tensor.dim() != 2:
                writer.add_array(GGUF_ORIG_SHAPE_KEY + key, list(tensor.shape))
            reference[key] = reference_dequantize(raw, kind, tuple(tensor.shape))
        elif tensor.dim() >= 2:
            half = tensor.to(torch.float16)
            writer.add_tensor(key, half.numpy())
            reference[key] = half.float()
        else:
            writer.add_tensor(key, tensor.float().numpy())
            reference[key] = tensor.float()
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return reference


def fp8_scaled(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(e4m3fn weight, fp32 scalar scale) as ComfyUI's scaled-fp8 files store a Linear weight."""
    scale = weight.abs().max().float() / FP8_MAX
    return (weight.float() / scale).to(torch.float8_e4m3fn), scale.reshape(())


def write_fp8_dit(
    state: dict[str, torch.Tensor], path: Path, prefix: str, unscaled: str, conv_key: str
) -> dict[str, torch.Tensor]:
    """A ComfyUI scaled-fp8 DiT file: every 2-D weight (and the conv weight) fp8 with `scale_weight`, except `unscaled`
    (plain fp8, scale 1); a `scale_input` on one layer and the `scaled_fp8` marker. Returns the fp32 reference."""
    out, reference = {"scaled_fp8": torch.empty(0, dtype=torch.float8_e4m3fn)}, {}
    for key, tensor in state.items():
        layer = key.removesuffix(".weight")
        if key.endswith(".weight") and (tensor.dim() == 2 or key == conv_key):
            if key == unscaled:
                weight, scale = tensor.to(torch.float8_e4m3fn), torch.ones(())
            else:
                weight, scale = fp8_scaled(tensor)
                out[f"{prefix}{layer}.scale_weight"] = scale
            out[prefix + key] = weight
            reference[key] = weight.float() * scale
        else:
            out[prefix + key] = tensor
            reference[key] = tensor.float()
    first_scale = next(k for k in out if k.endswith(".scale_weight"))
    out[first_scale.replace(".scale_weight", ".scale_input")] = torch.ones(())  # unused by weight-only dequantisation
    save_file(out, str(path))
    return reference


def save_reference(reference: dict[str, torch.Tensor], path: Path) -> Path:
    """The dequantised reference as a plain fp32 safetensors DiT."""
    save_file({k: v.contiguous() for k, v in reference.items()}, str(path))
    return path
