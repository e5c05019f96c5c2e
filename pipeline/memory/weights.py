"""Weight bytes of the DiT in every format (per tensor, per block, in total), computed from its config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..dit.config import DiTConfig
from .formats import WeightFormat, layer_tensors, weight_format
from .inventory import dit_inventory

if TYPE_CHECKING:  # the estimator itself runs without torch
    from torch import nn


@dataclass(frozen=True)
class DiTWeights:
    """Bytes of the DiT's state in one format: each block, and everything outside the blocks."""

    blocks: tuple[int, ...]
    top: int

    @property
    def total(self) -> int:
        """All weight bytes."""
        return sum(self.blocks) + self.top

    @property
    def largest_block(self) -> int:
        """Bytes of the largest block (GGUF mixes make some blocks larger)."""
        return max(self.blocks)


def dit_tensor_bytes(cfg: DiTConfig, fmt: str | WeightFormat) -> dict[str, int]:
    """Bytes of every state-dict tensor of the DiT stored in `fmt`, by name (what a format's layers must hold)."""
    fmt = weight_format(fmt) if isinstance(fmt, str) else fmt
    inventory = dit_inventory(cfg)
    out: dict[str, int] = {}
    for index, layers in enumerate(inventory.blocks):
        for layer in layers:
            out.update(layer_tensors(layer, fmt, index, cfg.depth))
    for layer in inventory.top:
        out.update(layer_tensors(layer, fmt, None, cfg.depth))
    return out


def dit_weights(cfg: DiTConfig, fmt: str | WeightFormat) -> DiTWeights:
    """Per-block and top-level weight bytes of the DiT in `fmt`."""
    sizes = dit_tensor_bytes(cfg, fmt)
    blocks = [0] * cfg.depth
    top = 0
    for name, size in sizes.items():
        if name.startswith("blocks."):
            blocks[int(name.split(".")[1])] += size
        else:
            top += size
    return DiTWeights(tuple(blocks), top)


def model_weights(model: nn.Module) -> DiTWeights:
    """Per-block and top-level bytes of a built DiT's own state (any format, on any device, meta included)."""
    blocks = [_state_bytes(block) for block in model.blocks]
    top = _state_bytes(model) - sum(blocks)
    return DiTWeights(tuple(blocks), top)


def _state_bytes(module: nn.Module) -> int:
    """Bytes of a module's state dict (what ComfyUI's module_size counts)."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())
