"""The engine's own weight offload (used where ComfyUI's ModelPatcher is not available, e.g. the GPU check).

Chosen modules keep their weights in host memory (page-locked when CUDA is up); a forward pre-hook copies them to the
compute device for that module's forward only, and a forward hook points them back at the host copies, so nothing is
ever copied back from the device and at most one offloaded module's weights are on the device at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class BlockOffload:
    """Streams the weights of `modules` from host memory to `device` around each of their forwards."""

    def __init__(self, modules: Sequence[nn.Module], device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.bytes_moved = 0  # host -> device bytes since construction (or the last reset)
        self._host: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._handles: list[Any] = []
        pin = torch.cuda.is_available()
        for module in modules:
            tensors = []
            for tensor in (*module.parameters(), *module.buffers()):
                host = tensor.data.to("cpu")
                tensor.data = host.pin_memory() if pin else host
                tensors.append((tensor, tensor.data))
            self._host[module] = tensors
            self._handles.append(module.register_forward_pre_hook(self._to_device))
            self._handles.append(module.register_forward_hook(self._to_host))

    @property
    def offloaded_bytes(self) -> int:
        """Bytes kept in host memory."""
        return sum(host.numel() * host.element_size() for items in self._host.values() for _, host in items)

    def _to_device(self, module: nn.Module, _args: Any) -> None:
        """Copy this module's weights to the compute device for its forward."""
        for tensor, host in self._host[module]:
            # copy=True: a separate device copy even when the device is the CPU, so the host copy stays untouched.
            tensor.data = host.to(self.device, non_blocking=True, copy=True)
            self.bytes_moved += host.numel() * host.element_size()

    def _to_host(self, module: nn.Module, _args: Any, _output: Any) -> None:
        """Drop the device copies: the weights point at their host tensors again."""
        for tensor, host in self._host[module]:
            tensor.data = host

    def remove(self) -> None:
        """Remove the hooks (the weights stay in host memory)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def offload_last_blocks(blocks: Sequence[nn.Module], count: int, device: torch.device | str) -> BlockOffload:
    """Offload the last `count` blocks (the plan's offloaded blocks; all blocks of the DiT are alike)."""
    if not 0 <= count <= len(blocks):
        raise ValueError(f"can offload 0..{len(blocks)} blocks, asked for {count}")
    return BlockOffload(list(blocks)[len(blocks) - count :], device)
