"""DiT behaviour: layer namespace, conditioning cases, KV cache, reference masking, multi-speaker routing, audio."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.dit.audio_proj import regroup_audio_windows
from pipeline.dit.model import LongCatAvatarDiT
from pipeline.dit.multispeaker import key_positions, query_positions
from support.dit_tiny import randomize, rel_l2, tiny_config, tiny_inputs, tiny_model


def recording_ops() -> SimpleNamespace:
    """A comfy.ops-like namespace whose layers cast weights to the input dtype and record their creation."""
    created: list[nn.Module] = []

    def cast(tensor: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
        return None if tensor is None else tensor.to(x.dtype)

    class Linear(nn.Linear):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(self)

        def forward(self, x):
            return F.linear(x, cast(self.weight, x), cast(self.bias, x))

    class Conv3d(nn.Conv3d):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(self)

        def forward(self, x):
            return self._conv_forward(x, cast(self.weight, x), cast(self.bias, x))

    class LayerNorm(nn.LayerNorm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(self)

        def forward(self, x):
            return F.layer_norm(x, self.normalized_shape, cast(self.weight, x), cast(self.bias, x), self.eps)

    class RMSNorm(nn.RMSNorm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(self)

    return SimpleNamespace(Linear=Linear, Conv3d=Conv3d, LayerNorm=LayerNorm, RMSNorm=RMSNorm, created=created)


def test_every_weight_comes_from_the_namespace() -> None:
    """All parameters live in namespace layers; the state dict holds only them (RoPE tables are computed)."""
    ops = recording_ops()
    model = LongCatAvatarDiT(tiny_config(), operations=ops)
    owned = {id(p) for layer in ops.created for p in layer.parameters(recurse=False)}
    assert owned == {id(p) for p in model.parameters()}
    assert set(model.state_dict()) == {n for n, _ in model.named_parameters()}
    assert not list(model.buffers())


def test_manual_cast_namespace_runs_fp16_weights_in_fp32() -> None:
    """Weights stored in fp16 with an fp32 compute dtype (comfy manual-cast style) match the fp32 model closely."""
    reference = tiny_model(seed=5)
    ops = recording_ops()
    model = LongCatAvatarDiT(reference.config, operations=ops, dtype=torch.float16)
    model.load_state_dict(reference.state_dict())
    model.set_compute_dtype(torch.float32)
    inputs = tiny_inputs(reference.config, frames=3)
    with torch.no_grad():
        error = rel_l2(model(**inputs, num_cond_latents=1), reference(**inputs, num_cond_latents=1))
    assert 0 < error < 2e-3


def continuation(model: LongCatAvatarDiT, inputs: dict, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """[ref | 2 cond | 4 noisy] run uncached and through the KV cache; returns the noisy outputs of both."""
    cond, noisy = inputs["hidden_states"][:, :, :3], inputs["hidden_states"][:, :, 3:]
    t_noisy = inputs["timestep"][:, 3:]
    common = {"num_cond_latents": 3, "num_ref_latents": 1, **kwargs}
    full_t = torch.cat([torch.zeros(1, 3), t_noisy], dim=1)
    with torch.no_grad():
        uncached = model(**{**inputs, "timestep": full_t}, **common)[:, :, 3:]
        text = torch.zeros_like(inputs["encoder_hidden_states"])
        cache_kwargs = {k: v for k, v in common.items() if k not in ("mask_frame_range", "ref_target_masks")}
        audio = inputs["audio_embs"]
        _, cache = model(
            cond, torch.zeros(1, 3), text, audio_embs=audio, return_kv=True, skip_crs_attn=True, **cache_kwargs
        )
        cached = model(noisy, t_noisy, inputs["encoder_hidden_states"], inputs["encoder_attention_mask"],
                       audio_embs=audio, kv_cache_dict=cache, **common)  # fmt: skip
    return uncached, cached


@pytest.mark.parametrize(("ref_img_index", "mask_frame_range"), [(4, 1), (5, 2), (4, 0), (10, 3), (-10, 3), (3, 1)])
def test_kv_cache_equals_uncached(ref_img_index: int, mask_frame_range: int) -> None:
    """The cached continuation is the uncached Case C for any reference slot and mask range (incl. no masking)."""
    model = tiny_model("v1.0", seed=7)
    inputs = tiny_inputs(model.config, frames=7, seed=8)
    uncached, cached = continuation(model, inputs, ref_img_index=ref_img_index, mask_frame_range=mask_frame_range)
    assert torch.allclose(cached, uncached, atol=2e-5), (cached - uncached).abs().max()


@pytest.mark.parametrize(("speakers", "classes"), [(2, 3), (3, 4), (3, 5), (2, 4)])
def test_multi_speaker_kv_cache_equals_uncached(speakers: int, classes: int) -> None:
    """Multi-speaker routing (any number of streams and mask classes) is the same with and without the cache."""
    model = tiny_model("v1.5", seed=9)
    inputs = tiny_inputs(model.config, frames=7, audio_batch=speakers, seed=10)
    masks = torch.zeros(classes, 64, 96)
    masks[0, :, :40], masks[1, :, 56:], masks[2, :, 40:56] = 1, 1, 1
    for extra in range(3, classes):
        masks[extra, extra * 8 : extra * 8 + 8, :8] = 1
    uncached, cached = continuation(model, inputs, ref_img_index=4, mask_frame_range=1, ref_target_masks=masks)
    assert torch.allclose(cached, uncached, atol=2e-5), (cached - uncached).abs().max()
    with torch.no_grad():
        single = model(**{**inputs, "audio_embs": inputs["audio_embs"][:1]}, num_cond_latents=1)
        multi = model(**inputs, num_cond_latents=1, ref_target_masks=masks)
    assert rel_l2(multi, single) > 1e-2  # the other speakers' audio and the routing change the prediction


@pytest.mark.parametrize(("mask_frame_range", "untouched"), [(1, [0, 1, 2]), (0, [])])
def test_masked_frames_ignore_the_reference(mask_frame_range: int, untouched: list[int]) -> None:
    """With one block, noisy frames in the masked range do not depend on the reference latent at all."""
    model = randomize(LongCatAvatarDiT(tiny_config(depth=1)), seed=12).eval()
    inputs = tiny_inputs(model.config, frames=7, seed=13)
    inputs["timestep"][:, :3] = 0
    kwargs = {"num_cond_latents": 3, "num_ref_latents": 1, "ref_img_index": 3, "mask_frame_range": mask_frame_range}
    changed = dict(inputs, hidden_states=inputs["hidden_states"].clone())
    changed["hidden_states"][:, :, 0] += 1.0
    with torch.no_grad():
        a, b = model(**inputs, **kwargs), model(**changed, **kwargs)
    # noisy frame j has RoPE time 2 + j; ref at time 3 with range 1 masks times 2..4 = noisy frames 0..2
    for j in range(4):
        same = torch.equal(a[:, :, 3 + j], b[:, :, 3 + j])
        assert same == (j in untouched), j
    assert torch.equal(a[:, :, 1:3], b[:, :, 1:3])  # clean frames never see the reference either


def test_audio_regrouping_slots() -> None:
    """Latent frame 1 gets frame-1 slots 0..2, the centre of frames 2 and 3, and frame-4 slots 2..4."""
    audio = torch.arange(9)[None, :, None, None, None] * 10 + torch.arange(5)[None, None, :, None, None]
    first, later = regroup_audio_windows(audio.float(), vae_scale=4)
    assert first[0, 0, :, 0, 0].tolist() == [0, 1, 2, 3, 4]
    assert later[0, 0, :, 0, 0].tolist() == [10, 11, 12, 22, 32, 42, 43, 44]
    assert later[0, 1, :, 0, 0].tolist() == [50, 51, 52, 62, 72, 82, 83, 84]
    with pytest.raises(ValueError, match="1 \\+ a multiple of 4"):
        regroup_audio_windows(audio[:, :8].float(), vae_scale=4)


def test_speaker_positions() -> None:
    """Audio keys: speaker blocks at 2 and 22, extra streams at 12 (<= 3 classes) or 100; queries by argmax class."""
    assert key_positions(12, 3, 4, 24, 4).tolist() == [2.0] * 4 + [22.0] * 4 + [100.0] * 4
    assert key_positions(12, 3, 3, 24, 4).tolist() == [2.0] * 4 + [22.0] * 4 + [12.0] * 4
    assert key_positions(8, 2, 3, 24, 4).tolist() == [2.0] * 4 + [22.0] * 4
    ref_map = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.05, 0.8, 0.1, 0.3], [0.0, 0.0, 0.0, 0.9]])
    positions = query_positions(ref_map, 24, 4)
    assert torch.allclose(positions, torch.tensor([4.0, 20 + 4 * 0.75 / 0.75, 4 * 0.4 / 0.8, 12.0]), atol=1e-5)


def test_text_padding_semantics() -> None:
    """Padded text tokens never matter; zero-padding (attended zeros) and masking out differ."""
    model = tiny_model(seed=14)
    inputs = tiny_inputs(model.config, frames=2, seed=15)
    noisy_pad = dict(inputs, encoder_hidden_states=inputs["encoder_hidden_states"].clone())
    noisy_pad["encoder_hidden_states"][:, :, -2:] += 5.0
    with torch.no_grad():
        zero_pad = model(**inputs)
        assert torch.equal(zero_pad, model(**noisy_pad))
        model.config.text_tokens_zero_pad = False
        masked = model(**inputs)
        assert torch.allclose(masked, model(**noisy_pad), atol=1e-6)
    assert rel_l2(masked, zero_pad) > 1e-4


def test_attention_backend_fallback_and_errors() -> None:
    """A missing optional kernel falls back to SDPA; unknown names and inconsistent inputs are ValueErrors."""
    model = tiny_model(seed=16)
    inputs = tiny_inputs(model.config, frames=3)
    with torch.no_grad():
        expected = model(**inputs)
        model.set_attention_backend("sage")
        assert torch.equal(model(**inputs), expected)
        with pytest.raises(ValueError, match="unknown attention backend"):
            model.set_attention_backend("xformers")
        with pytest.raises(ValueError, match="num_ref_latents"):
            model(**inputs, num_cond_latents=2)
        with pytest.raises(ValueError, match="num_cond_latents > 0"):
            model(**inputs, ref_target_masks=torch.ones(3, 64, 96))


def test_odd_latent_size_is_padded() -> None:
    """Odd H/W are zero-padded for patchify and cropped back, like the reference PatchEmbed3D."""
    model = tiny_model(seed=17)
    inputs = tiny_inputs(model.config, frames=2)
    inputs["hidden_states"] = inputs["hidden_states"][:, :, :, :7, :11]
    with torch.no_grad():
        out = model(**inputs)
    assert out.shape == (1, 16, 2, 7, 11) and torch.isfinite(out).all()


def test_empty_mask_classes() -> None:
    """An empty extra class (>= 2) sends every query to the background (reference NaN argmax); empty speakers fail."""
    ref_map = torch.tensor([[0.9, 0.1, 0.5], [0.05, 0.8, 0.1], [float("nan")] * 3])
    assert query_positions(ref_map, 24, 4).tolist() == [12.0, 12.0, 12.0]
    model = tiny_model(seed=18)
    inputs = tiny_inputs(model.config, frames=3, audio_batch=2)
    masks = torch.zeros(3, 64, 96)
    masks[0, :, :40] = 1
    masks[1, 20:30, 90:] = 1  # between the nearest-neighbour sample points of the 4 x 6 token grid
    with torch.no_grad(), pytest.raises(ValueError, match=r"speaker mask\(s\) \[2\] cover no latent token"):
        model(**inputs, num_cond_latents=1, ref_target_masks=masks)
