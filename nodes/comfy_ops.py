"""ComfyUI's side of the engine's operations seam: ComfyUI's ops plus our quantised Linears with its cast protocol.

The engine builds every weight-bearing layer from a namespace (`pipeline.operations`); here that namespace is what
`comfy.ops.pick_operations` returns, extended with Int8Linear / Fp8Linear / GGUFLinear variants that carry
`comfy_cast_weights`, `weight_function` and `bias_function` (comfy/ops.py `CastWeightBiasOp`). When ComfyUI's
ModelPatcher offloads such a layer ("lowvram"), its forward casts the stored quantised tensors to the input's device
with `comfy.model_management.cast_to` and dequantises them there (as ComfyUI-GGUF's layers do), then applies the
weight functions (LoRA) to the dequantised weight. The engine's own LoRA patches move onto the patcher with
`move_lora_to_patcher`: ComfyUI LoRA patches on dense layers, weight wrappers on quantised ones.
"""

from __future__ import annotations

from typing import Any

import comfy.model_management
import comfy.ops
import torch
from comfy.model_patcher import ModelPatcher
from comfy.weight_adapter import LoRAAdapter

from ..pipeline.checkpoints.lora import LoRAPatch, lora_patches, remove_lora
from ..pipeline.checkpoints.quantized import QuantizedLinear
from ..pipeline.operations import DEFAULT_OPERATIONS, QUANTIZED_NAMES


class CastQuantized(comfy.ops.CastWeightBiasOp):
    """ComfyUI's cast protocol for a quantised Linear: stored tensors cast to the input's device, then dequantised."""

    def cast_stored(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, Any]:
        """(stored tensors, bias in x's dtype, offload stream) on x's device, cast by ComfyUI on its offload stream
        (comfy/ops.py `cast_bias_weight` casts a dense layer's weight the same way)."""
        mm = comfy.model_management
        device = x.device
        stored = self.stored()
        on_host = any(t.device != device for t in stored.values())
        stream = mm.get_offload_stream(device) if on_host else None
        non_blocking = mm.device_supports_non_blocking(device)
        moved = {n: mm.cast_to(t, None, device, non_blocking=non_blocking, stream=stream) for n, t in stored.items()}
        bias = None
        if self.bias is not None:
            bias = mm.cast_to(self.bias, x.dtype, device, non_blocking=non_blocking, stream=stream)
        mm.sync_stream(device, stream)
        return moved, bias, stream

    def forward_comfy_cast_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The offloaded (or patched) forward: cast, then dequantise and multiply (in blocks of rows when large)."""
        moved, bias, stream = self.cast_stored(x)
        out = self.linear(x, moved, bias)
        comfy.ops.uncast_bias_weight(self, next(iter(moved.values())), bias, stream)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Cast path when ComfyUI asks for it (offloaded layer, weight functions), else the engine's forward."""
        comfy.ops.run_every_op()
        if self.comfy_cast_weights or self.weight_function or self.bias_function:
            return self.forward_comfy_cast_weights(x)
        return super().forward(x)


QUANTIZED_OPS = {
    name: type(name, (CastQuantized, getattr(DEFAULT_OPERATIONS, name)), {"__module__": __name__})
    for name in QUANTIZED_NAMES
}


def _weight_for(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An RMSNorm's weight on x's device in x's dtype: cast by ComfyUI (from the host when offloaded, weight
    functions applied) when it asks for it, else the resident weight."""
    if self.comfy_cast_weights or self.weight_function:
        weight, _ = comfy.ops.cast_bias_weight(self, x)
        return weight
    return self.weight.to(device=x.device, dtype=x.dtype)


def operations(weight_dtype: torch.dtype, compute_dtype: torch.dtype, load_device: torch.device | None = None) -> type:
    """The namespace for the engine: `comfy.ops.pick_operations(...)` plus the quantised Linears above, and an
    RMSNorm whose weight the DiT fetches with `weight_for` (bias None: the loader skips comfy's reset_parameters,
    which would set it)."""
    base = comfy.ops.pick_operations(weight_dtype, compute_dtype, load_device)
    rms_norm = type("RMSNorm", (base.RMSNorm,), {"weight_for": _weight_for, "bias": None, "__module__": __name__})
    return type("LongCatAvatarOps", (base,), {**QUANTIZED_OPS, "RMSNorm": rms_norm})


def comfy_lora_adapter(patch: LoRAPatch) -> LoRAAdapter:
    """The engine's LoRA patch as ComfyUI's LoRA weight adapter (split up-projections as one block-diagonal up)."""
    up = torch.block_diag(*patch.ups)
    # ComfyUI scales by alpha / rank (comfy/weight_adapter/lora.py); alpha_scale is already that quotient.
    alpha = patch.alpha_scale * patch.down.shape[0]
    return LoRAAdapter(set(), (up, patch.down, alpha, None, None, None))


def move_lora_to_patcher(patcher: ModelPatcher) -> int:
    """Hand the model's on-the-fly LoRA patches to `patcher` (which resets weight functions when it loads).

    Dense layers get ComfyUI LoRA patches (`add_patches`: merged into resident weights on load and restored on
    unpatch, `LowVramPatch` on offloaded ones); quantised layers get the engine's patch as a weight wrapper that
    patches the dequantised weight (it moves with the layer through `move_to`). Returns how many patches moved.
    """
    moved = 0
    for name, module in patcher.model.named_modules():
        key = f"{name}.weight"
        for patch in lora_patches(module):
            if isinstance(module, QuantizedLinear):  # the engine's own patch: the engine's arithmetic, bit for bit
                patcher.add_weight_wrapper(key, patch)
            else:
                patcher.add_patches({key: comfy_lora_adapter(patch)}, strength_patch=patch.strength)
            moved += 1
    remove_lora(patcher.model)
    return moved
