"""Attention kernel selection: torch SDPA by default; SageAttention / FlashAttention only if importable and asked for."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
BACKENDS = ("sdpa", "sage", "flash")


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Plain softmax(q k^T / sqrt(D)) v on [B, H, S, D] tensors; `mask` is a boolean keep-mask broadcast to scores."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _sage() -> AttentionFn | None:
    """SageAttention's sageattn in HND layout, if the package is importable."""
    try:
        module = importlib.import_module("sageattention")
    except ImportError:
        return None

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """sageattn on [B, H, S, D]."""
        return module.sageattn(q, k, v, tensor_layout="HND", is_causal=False)

    return run


def _flash() -> AttentionFn | None:
    """flash-attn 2's flash_attn_func (layout [B, S, H, D]), if importable."""
    try:
        module = importlib.import_module("flash_attn")
    except ImportError:
        return None

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """flash_attn_func on [B, H, S, D] (transposed to its [B, S, H, D] layout and back)."""
        out = module.flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return out.transpose(1, 2)

    return run


def resolve(name: str) -> AttentionFn | None:
    """The unmasked attention function for `name`, or None for the SDPA default (also when the kernel is missing)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {BACKENDS}")
    if name == "sdpa":
        return None
    fn = _sage() if name == "sage" else _flash()
    if fn is None:
        log.warning("attention backend %r is not importable; using torch SDPA", name)
    return fn


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    backend: AttentionFn | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention on [B, H, S, D]; optional kernels only for unmasked CUDA half-precision inputs, else SDPA."""
    if backend is not None and mask is None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        return backend(q, k, v)
    return sdpa(q, k, v, mask)
