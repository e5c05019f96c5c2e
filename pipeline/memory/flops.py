"""Dense compute of DiT forwards and whole runs, and the time it takes at a stated throughput."""

from __future__ import annotations

from ..dit.config import DiTConfig
from .inventory import dit_inventory

# One multiply-add is 2 FLOPs; attention does q·k^T and p·v (2 products) over Nq x Nk x hidden per block.
FLOPS_PER_MAC = 2
ATTENTION_PRODUCTS = 2
TERA = 1e12


def dit_forward_flops(cfg: DiTConfig, query_tokens: int, key_tokens: int) -> int:
    """FLOPs of one sample through the DiT: 2·(params_block·depth + params_top)·Nq + 4·Nq·Nk·hidden·depth."""
    inventory = dit_inventory(cfg)
    weights = inventory.block_params * cfg.depth + inventory.top_params
    attention = FLOPS_PER_MAC * ATTENTION_PRODUCTS * query_tokens * key_tokens * cfg.hidden_size * cfg.depth
    return FLOPS_PER_MAC * weights * query_tokens + attention


def seconds_at(flops: float, tflops: float) -> float:
    """Seconds for `flops` at a sustained `tflops` TFLOP/s."""
    if tflops <= 0:
        raise ValueError(f"the device throughput must be positive TFLOP/s, got {tflops}")
    return flops / (tflops * TERA)
