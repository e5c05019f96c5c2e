"""Explicit fp32 islands (the reference relies on CUDA autocast, which does nothing on CPU)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..checkpoints.quantized import QuantizedLinear


def call_fp32(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run `module` on `x` in float32 math whatever the dtype of its weights (autocast(float32) equivalent).

    The module itself is called (so its weight patches, e.g. an on-the-fly LoRA, still apply); low-precision floating
    parameters/buffers are substituted by float32 copies for the duration of the call. Quantised layers are left
    alone: they dequantise to the input's dtype (float32 here) themselves, and a copy of their stored tensors would
    defeat offloading (it would be cast instead of them).
    """
    x = x.float()
    quantized = {f"{name}." if name else "" for name, m in module.named_modules() if isinstance(m, QuantizedLinear)}
    casts = {
        name: tensor.float()
        for name, tensor in (*module.named_parameters(), *module.named_buffers())
        if tensor.is_floating_point()
        and tensor.dtype != torch.float32
        and not any(name.startswith(prefix) for prefix in quantized)
    }
    if not casts:
        return module(x)
    return functional_call(module, casts, (x,), strict=False, tie_weights=False)


def layer_norm_fp32(x: torch.Tensor, norm: nn.Module | None, eps: float) -> torch.Tensor:
    """LayerNorm computed in float32 (affine `norm` module or none), returned in float32."""
    if norm is None:
        return F.layer_norm(x.float(), (x.shape[-1],), None, None, eps)
    return call_fp32(norm, x)


def modulate_fp32(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    """Non-affine LayerNorm then `* (1 + scale) + shift`, all in float32, cast back to x's dtype.

    x is [B, T, S, C] (tokens grouped per latent frame), shift/scale are float32 [B, T, 1, C].
    """
    normed = F.layer_norm(x.float(), (x.shape[-1],), None, None, eps)
    return (normed * (scale + 1) + shift).to(x.dtype)


def rms_norm_reference(x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    """RMSNorm as the reference's RMSNorm_FP32: normalise in fp32, cast back, THEN multiply by the weight.

    The weight product therefore happens in x's dtype (bf16 in real runs). `norm` is the namespace RMSNorm that owns
    the weight (state-dict name `...q_norm.weight`); the weight is cast to x's device/dtype where used, by the
    module's `weight_for` when it has one.
    """
    eps = norm.eps if norm.eps is not None else torch.finfo(torch.float32).eps
    xf = x.float()
    normed = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
    if getattr(norm, "weight", None) is None:
        return normed
    fetch = getattr(norm, "weight_for", None)  # a namespace's RMSNorm may cast its weight itself (pipeline.operations)
    weight = fetch(normed) if fetch is not None else norm.weight.to(device=x.device, dtype=x.dtype)
    return normed * weight


def gated_add(x: torch.Tensor, gate: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
    """Residual `x + gate * update` with per-frame gates, computed in float32 and cast back to x's dtype.

    x is [B, N, C] with N = T * S; gate is float32 [B, T, 1, C]; update is [B, N, C].
    """
    batch, tokens, channels = x.shape
    frames = gate.shape[1]
    gated = gate * update.float().view(batch, frames, tokens // frames, channels)
    return (x.float() + gated.view(batch, tokens, channels)).to(x.dtype)
