"""Collect an encoder's per-layer hidden states with the transformers 4.41 semantics the reference relied on."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def collect_hidden_states(layers: Sequence[torch.nn.Module], run: Callable[[], torch.Tensor]) -> list[torch.Tensor]:
    """Run `run()` and return [input of layer 0, …, input of layer n−1, run()'s result].

    That is transformers 4.41's `hidden_states` tuple: the embedding output, then each layer's output, the last
    one as the encoder returns it (after Whisper's final LayerNorm). Newer transformers versions record hidden
    states differently, so the states are taken from forward pre-hooks on the layers instead.
    """
    inputs: list[torch.Tensor] = []

    def grab(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        inputs.append(args[0] if args else kwargs["hidden_states"])

    handles = [layer.register_forward_pre_hook(grab, with_kwargs=True) for layer in layers]
    try:
        final = run()
    finally:
        for handle in handles:
            handle.remove()
    if len(inputs) != len(layers):
        raise RuntimeError(f"expected {len(layers)} encoder layers to run, saw {len(inputs)} (layer drop active?)")
    return [*inputs, final]
