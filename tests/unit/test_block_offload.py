"""The engine's own block offload: same prediction, weights back in host memory, exactly the block bytes moved."""

from __future__ import annotations

import pytest
import torch

from pipeline.memory.offload import offload_last_blocks
from support.dit_tiny import tiny_inputs, tiny_model


def block_bytes(block: torch.nn.Module) -> int:
    """Bytes of a block's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in (*block.parameters(), *block.buffers()))


@pytest.mark.parametrize("count", [1, 2])
def test_block_offload_streams_exactly_the_offloaded_blocks(count: int) -> None:
    """Per forward, the host->device bytes are the offloaded blocks' bytes; weights point at host copies after."""
    model = tiny_model("v1.5", seed=41)
    inputs = tiny_inputs(model.config, frames=3, seed=42)
    with torch.no_grad():
        resident = model(**inputs, num_cond_latents=1)
        offload = offload_last_blocks(model.blocks, count, "cpu")
        hosts = [p.data_ptr() for p in model.blocks[-1].parameters()]
        streamed = model(**inputs, num_cond_latents=1)
    assert torch.equal(streamed, resident)
    assert offload.bytes_moved == offload.offloaded_bytes == sum(block_bytes(b) for b in model.blocks[-count:])
    assert [p.data_ptr() for p in model.blocks[-1].parameters()] == hosts
    offload.remove()
    with torch.no_grad():
        model(**inputs, num_cond_latents=1)
    assert offload.bytes_moved == offload.offloaded_bytes  # no hooks any more


def test_block_offload_refuses_impossible_counts() -> None:
    """More blocks than the model has is refused with the range."""
    model = tiny_model("v1.5", seed=43)
    with pytest.raises(ValueError, match=r"0\.\.2 blocks"):
        offload_last_blocks(model.blocks, 3, "cpu")
