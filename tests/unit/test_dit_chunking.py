"""Activation memory options: FFN token chunks and speaker-map query chunks equal the whole; KV cache on the host."""

from __future__ import annotations

import pytest
import torch

from pipeline.dit.layers import FeedForwardSwiGLU
from pipeline.dit.multispeaker import reference_attention_map
from pipeline.memory.options import ActivationOptions
from support.dit_tiny import tiny_inputs, tiny_model


def speaker_masks(classes: int = 3) -> torch.Tensor:
    """Pixel masks [classes, 64, 96]: speaker 1 left, speaker 2 right, background between."""
    masks = torch.zeros(classes, 64, 96)
    masks[0, :, :40], masks[1, :, 56:], masks[2, :, 40:56] = 1, 1, 1
    return masks


@pytest.mark.parametrize("chunk", [1, 7, 64, 95])
def test_chunked_ffn_equals_whole(chunk: int) -> None:
    """Token slices of any size (dividing the token count or not) give the unchunked FFN output.

    Equal within float32 rounding: a GEMM over fewer rows may accumulate in another order."""
    torch.manual_seed(0)
    ffn = FeedForwardSwiGLU(32, 96, torch.nn, None, None)
    x = torch.randn(2, 48, 32)
    whole = ffn(x)
    chunked = ffn(x, chunk)
    assert chunked.shape == whole.shape
    torch.testing.assert_close(chunked, whole)


@pytest.mark.parametrize("chunk", [1, 5, 24, 1000])
def test_chunked_speaker_map_equals_whole(chunk: int) -> None:
    """Query slices of the reference attention map give the whole map (softmax rows are independent)."""
    gen = torch.Generator().manual_seed(3)
    q, k = torch.randn(1, 4, 53, 16, generator=gen), torch.randn(1, 4, 24, 16, generator=gen)
    masks = (torch.rand(3, 24, generator=gen) > 0.5).float()
    whole = reference_attention_map(q, k, masks)
    chunked = reference_attention_map(q, k, masks, chunk)
    assert chunked.shape == (3, 53)
    torch.testing.assert_close(chunked, whole)


def test_chunked_dit_forward_equals_whole() -> None:
    """The whole multi-speaker DiT with chunked FFN and chunked speaker map gives the unchunked prediction."""
    model = tiny_model("v1.5", seed=21)
    inputs = tiny_inputs(model.config, frames=3, audio_batch=2, seed=22)
    with torch.no_grad():
        whole = model(**inputs, num_cond_latents=1, ref_target_masks=speaker_masks())
        model.set_activation_options(ActivationOptions(ffn_chunk_tokens=17, map_chunk_queries=10))
        chunked = model(**inputs, num_cond_latents=1, ref_target_masks=speaker_masks())
    torch.testing.assert_close(chunked, whole)


def cached_continuation(model, inputs: dict, masks: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
    """[ref | 2 cond] into the KV cache, then the 4 noisy frames through it; returns (prediction, cache)."""
    cond, noisy = inputs["hidden_states"][:, :, :3], inputs["hidden_states"][:, :, 3:]
    common = {"num_cond_latents": 3, "num_ref_latents": 1, "ref_img_index": 4}
    text = torch.zeros_like(inputs["encoder_hidden_states"])
    with torch.no_grad():
        _, cache = model(
            cond, torch.zeros(1, 3), text, audio_embs=inputs["audio_embs"], return_kv=True, skip_crs_attn=True,
            **common,
        )  # fmt: skip
        out = model(
            noisy, inputs["timestep"][:, 3:], inputs["encoder_hidden_states"], inputs["encoder_attention_mask"],
            audio_embs=inputs["audio_embs"], kv_cache_dict=cache, mask_frame_range=1, ref_target_masks=masks,
            **common,
        )  # fmt: skip
    return out, cache


@pytest.mark.parametrize("speakers", [1, 2])
def test_host_kv_cache_equals_resident(speakers: int) -> None:
    """A continuation whose KV cache lives in host memory predicts exactly what the resident cache predicts."""
    model = tiny_model("v1.5", seed=23)
    inputs = tiny_inputs(model.config, frames=7, audio_batch=speakers, seed=24)
    masks = speaker_masks() if speakers > 1 else None
    resident, resident_cache = cached_continuation(model, inputs, masks)
    model.set_activation_options(ActivationOptions(kv_cache_on_host=True))
    hosted, host_cache = cached_continuation(model, inputs, masks)
    assert set(host_cache) == set(range(model.config.depth))
    assert all(t.device.type == "cpu" for kv in host_cache.values() for t in kv)
    for index, (k, v) in resident_cache.items():
        assert torch.equal(host_cache[index][0], k) and torch.equal(host_cache[index][1], v)
    torch.testing.assert_close(hosted, resident, atol=0, rtol=0)


def test_activation_options_reject_bad_chunks() -> None:
    """Chunk sizes are positive token counts (or None); anything else is refused with the option's name."""
    with pytest.raises(ValueError, match="ffn_chunk_tokens"):
        ActivationOptions(ffn_chunk_tokens=0)
    with pytest.raises(ValueError, match="map_chunk_queries"):
        ActivationOptions(map_chunk_queries=2.5)  # type: ignore[arg-type]
