"""The layer namespace the engine builds every weight-bearing layer from, and its default.

A caller (ComfyUI's adapter in nodes/) injects its own namespace; whatever it lacks comes from the default here:
torch layers whose Linear honours weight patches (`weight_function`, as ComfyUI's ops do) and the engine's quantised
Linears. Names: Linear, Conv3d, LayerNorm, RMSNorm, and the quantised Int8Linear, Fp8Linear, GGUFLinear. The DiT
multiplies by its RMSNorm weights itself (the reference's order of operations); a namespace RMSNorm may provide
`weight_for(x)`, its weight on x's device in x's dtype, to place that weight itself (a memory manager casting it
from the host).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints.fp8 import Fp8Linear
from .checkpoints.gguf_weights import GGUFLinear
from .checkpoints.int8 import Int8Linear
from .checkpoints.quantized import WeightPatch, apply_patches

DENSE_NAMES = ("Linear", "Conv3d", "LayerNorm", "RMSNorm")
QUANTIZED_NAMES = ("Int8Linear", "Fp8Linear", "GGUFLinear")


class PatchableLinear(nn.Linear):
    """torch's Linear that applies its weight / bias patches (on-the-fly LoRA) at every call, like ComfyUI's ops."""

    weight_function: Sequence[WeightPatch] = ()
    bias_function: Sequence[WeightPatch] = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """F.linear with the patched weight (the plain Linear when there are no patches)."""
        if not self.weight_function and not self.bias_function:
            return super().forward(x)
        bias = None if self.bias is None else apply_patches(self.bias, self.bias_function)
        return F.linear(x, apply_patches(self.weight, self.weight_function), bias)


DEFAULT_OPERATIONS = SimpleNamespace(
    Linear=PatchableLinear,
    Conv3d=nn.Conv3d,
    LayerNorm=nn.LayerNorm,
    RMSNorm=nn.RMSNorm,
    Int8Linear=Int8Linear,
    Fp8Linear=Fp8Linear,
    GGUFLinear=GGUFLinear,
)


def resolve_operations(operations: Any | None) -> SimpleNamespace:
    """The full namespace: the injected layer classes, the engine's defaults for any it lacks."""
    names = DENSE_NAMES + QUANTIZED_NAMES
    return SimpleNamespace(
        **{n: getattr(operations, n, None) or getattr(DEFAULT_OPERATIONS, n) for n in names},
    )


def _skip_reset(self: nn.Module) -> None:
    """No initialisation: the weights are about to be assigned from a checkpoint."""


def without_init(operations: Any | None) -> SimpleNamespace:
    """The namespace with `reset_parameters` disabled (like comfy.ops.disable_weight_init), for loading.

    Initialising on the meta device is wasted work and pulls in torch's decomposition modules (~8 MB resident).
    Quantised layers never initialise anything.
    """
    ops = resolve_operations(operations)
    dense = {n: type(n, (getattr(ops, n),), {"reset_parameters": _skip_reset}) for n in DENSE_NAMES}  # same names
    return SimpleNamespace(**dense, **{n: getattr(ops, n) for n in QUANTIZED_NAMES})
