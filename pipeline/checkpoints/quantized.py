"""The quantised-Linear protocol: stored tensors as frozen parameters, dequantised to the input's dtype at use time.

A quantised layer keeps what the checkpoint stores (int8 rows + scales, fp8 + a scale, GGUF blocks) as
`nn.Parameter(requires_grad=False)` so that a memory manager that moves or offloads parameters sees them, and
rebuilds the dense weight at every call from tensors it is handed (`dequantize_from`), so that a caller can first move
those tensors to another device (ComfyUI's cast protocol does exactly that for offloaded layers). Weight patches in
`weight_function` / `bias_function` (on-the-fly LoRA) are applied to the dequantised weight, as ComfyUI's ops do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

WeightPatch = Callable[[torch.Tensor], torch.Tensor]

# The most dense weight bytes one call dequantises at once: a larger layer is multiplied in blocks of output rows, so
# v1.5's 16384 x 4096 FFN layers (134 MB in bf16) never exist whole as a dense copy. 8 MiB keeps blocks of >= 256 rows
# in bf16 at the real widths (1024 rows of 4096 inputs), still whole matrix-kernel tiles; measured on the real-width
# int8 DiT on the CPU, a forward's added peak memory was 140 MB with whole layers, ~100 MB with 32 MiB blocks and
# ~67 MB with 8 MiB blocks (the rest: activations and the allocator's reuse).
DEQUANT_BLOCK_BYTES = 8 * 2**20


def frozen(tensor: torch.Tensor) -> nn.Parameter:
    """A parameter that never requires grad (integer storage cannot)."""
    return nn.Parameter(tensor, requires_grad=False)


def apply_patches(tensor: torch.Tensor, patches: Sequence[WeightPatch]) -> torch.Tensor:
    """`tensor` passed through each weight patch in order."""
    for patch in patches:
        tensor = patch(tensor)
    return tensor


class QuantizedLinear(nn.Module):
    """Base of every quantised Linear; subclasses name their stored tensors and implement `dequantize_from`."""

    stored_names: tuple[str, ...] = ()
    format_name = ""
    # Weight patches, as in ComfyUI's ops (class-level empty: assign a new list to add one, never append in place).
    weight_function: Sequence[WeightPatch] = ()
    bias_function: Sequence[WeightPatch] = ()

    def __init__(self, in_features: int, out_features: int, bias: bool, device: Any, dtype: Any) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        bias_tensor = torch.zeros(out_features, dtype=dtype or torch.bfloat16, device=device) if bias else None
        self.bias = None if bias_tensor is None else frozen(bias_tensor)

    def reset_parameters(self) -> None:
        """Nothing to initialise: the stored tensors are assigned from a checkpoint."""

    def stored(self) -> dict[str, torch.Tensor]:
        """The stored tensors by name."""
        return {name: getattr(self, name) for name in self.stored_names}

    def logical_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the stored tensors as a checkpoint header lists them (GGUF lists the dense shape)."""
        return {name: tuple(t.shape) for name, t in self.stored().items()}

    def dequantize_from(self, stored: dict[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        """The dense [out, in] weight in `dtype` from the stored tensors (on whatever device they are).

        Abstract: Int8Linear, Fp8Linear and GGUFLinear each implement their own dequantisation."""
        raise NotImplementedError(f"{type(self).__name__} does not implement dequantize_from")

    def dequantized_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The dense weight of this layer in `dtype`, on its own device, without weight patches."""
        return self.dequantize_from(self.stored(), dtype)

    def linear(self, x: torch.Tensor, stored: dict[str, torch.Tensor], bias: torch.Tensor | None) -> torch.Tensor:
        """F.linear of x with the weight dequantised from `stored` (on x's device) in x's dtype, patches applied;
        without weight patches, a layer above DEQUANT_BLOCK_BYTES is dequantised and multiplied in blocks of rows."""
        if bias is not None:
            bias = apply_patches(bias.to(x.dtype), self.bias_function)
        rows = max(1, DEQUANT_BLOCK_BYTES // (self.in_features * x.element_size()))
        if self.weight_function or rows >= self.out_features:  # a weight patch needs the whole dense weight
            weight = apply_patches(self.dequantize_from(stored, x.dtype), self.weight_function)
            return F.linear(x, weight, bias)
        out = x.new_empty(*x.shape[:-1], self.out_features)
        for start in range(0, self.out_features, rows):
            block = slice(start, start + rows)
            weight = self.dequantize_from(self.row_block(stored, block), x.dtype)
            out[..., block] = F.linear(x, weight, None if bias is None else bias[block])
        return out

    def row_block(self, stored: dict[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
        """The stored tensors of output rows `rows`: every tensor with one entry per output row is sliced (a
        per-layer scale stays whole); each format lays its rows out along the first dimension."""
        return {n: t[rows] if t.dim() and t.shape[0] == self.out_features else t for n, t in stored.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """F.linear with the weight dequantised to x's dtype (the stored tensors are moved to x's device if needed)."""
        stored = {name: t.to(x.device) for name, t in self.stored().items()}
        bias = None if self.bias is None else self.bias.to(x.device)
        return self.linear(x, stored, bias)

    def extra_repr(self) -> str:
        """Geometry and storage shown in the module repr."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
            f"format={self.format_name}"
        )


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted `name`."""
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def quantized_layers(model: nn.Module) -> dict[str, QuantizedLinear]:
    """Every quantised layer of `model` by name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, QuantizedLinear)}
