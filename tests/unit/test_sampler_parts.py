"""Sampler building blocks without real models: segment plan, guidance batching, hooks, noise, orchestration."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.audio.types import AudioFeatures
from pipeline.audio.windows import gather_windows
from pipeline.sampling.guidance import Guidance, predict
from pipeline.sampling.hooks import Interrupted, SamplerHooks
from pipeline.sampling.mode import LORA_DISTILLATION, LORA_NONE, LORA_OTHER
from pipeline.sampling.noise import draw_noise, latent_shape, make_generator
from pipeline.sampling.sampler import SamplerSettings, VideoConditioning, decode_segments, generate_video
from pipeline.sampling.schedules import build_schedule
from pipeline.sampling.segments import frames_covering, latent_frames, plan_segments
from pipeline.text.encoder import TextEmbedding
from pipeline.vae.pixels import pixels_to_frames


@pytest.mark.parametrize(("frames", "segments"), [(1, 1), (85, 1), (93, 1), (96, 2), (173, 2), (176, 3), (253, 3)])
def test_segment_plan_covers_the_frames(frames: int, segments: int) -> None:
    """93 frames, then 80 new per segment (13 re-used as clean conditioning)."""
    plan = plan_segments(frames)
    assert plan.num_segments == segments and plan.generated_frames >= frames == plan.output_frames
    assert plan.generated_frames == 93 + 80 * (segments - 1) and plan.cond_latents == 4
    assert [plan.start_frame(i) for i in range(segments)] == [80 * i for i in range(segments)]


def test_plan_validation_and_frame_counts() -> None:
    """Sizes must be 4k+1; durations round up to whole frames but float noise does not add one."""
    assert frames_covering(3.72, 25) == 93 and frames_covering(3.7201, 25) == 94 and frames_covering(0.01, 16) == 1
    assert plan_segments(30, frames_per_segment=21, overlap_frames=5).num_segments == 2
    for bad in ({"frames_per_segment": 92}, {"overlap_frames": 12}, {"overlap_frames": 93}):
        with pytest.raises(ValueError):
            plan_segments(100, **bad)
    assert latent_frames(93) == 24 and latent_shape(93, 480, 832) == (1, 16, 24, 60, 104)


def test_noise_comes_from_the_seed() -> None:
    """Same seed, same noise; the generator is a CPU one and is advanced between draws."""
    gen = make_generator(5)
    first, second = draw_noise(gen, (1, 16, 2, 2, 2)), draw_noise(gen, (1, 16, 2, 2, 2))
    assert gen.device.type == "cpu" and not torch.equal(first, second)
    torch.testing.assert_close(draw_noise(make_generator(5), (1, 16, 2, 2, 2)), first, atol=0, rtol=0)


class Linear(nn.Module):
    """A stand-in DiT whose output depends on latents, timestep, text and audio, recording every call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []

    def forward(self, hidden_states, timestep, encoder_hidden_states, encoder_attention_mask, audio_embs, **kw):
        self.calls.append({"x": hidden_states, "text": encoder_hidden_states, "audio": audio_embs, **kw})
        batch = hidden_states.shape[0]
        text = encoder_hidden_states.reshape(batch, -1).mean(1).view(batch, 1, 1, 1, 1)
        audio = audio_embs.reshape(audio_embs.shape[0], -1).mean(1)  # one value per audio row
        audio = (audio if audio.shape[0] == batch else audio.sum().expand(batch)).view(batch, 1, 1, 1, 1)
        t = timestep.reshape(batch, -1)[:, -1].view(batch, 1, 1, 1, 1)
        return hidden_states * 0.5 + text + audio + t / 1000


def _guidance(text_scale: float, audio_scale: float, masks: torch.Tensor | None = None, streams: int = 1):
    pos = TextEmbedding(torch.full((1, 1, 3, 4), 2.0), torch.ones(1, 3, dtype=torch.int64))
    neg = TextEmbedding(torch.full((1, 1, 3, 4), -1.0), torch.ones(1, 3, dtype=torch.int64))
    audio = torch.arange(streams * 5 * 5 * 2 * 3, dtype=torch.float32).view(streams, 5, 5, 2, 3) / 100
    return Guidance(pos, neg, audio, text_scale, audio_scale, masks)


def test_guidance_formula_and_batching() -> None:
    """CFG = U + text·(C − Ut) + audio·(Ut − U); [neg, pos] in one batch-2 call, U alone with zero audio."""
    x, t = torch.randn(1, 16, 2, 2, 2), torch.tensor([700.0])
    model = Linear()
    g = _guidance(4.0, 2.5)
    out = predict(model, x, t, g, SamplerHooks())
    assert [c["x"].shape[0] for c in model.calls] == [2, 1]  # two DiT passes per guided step
    assert model.calls[0]["text"][0].mean() == -1 and model.calls[0]["text"][1].mean() == 2
    assert torch.equal(model.calls[1]["audio"], torch.zeros_like(g.audio))
    single = Linear()
    c = single(x, t, g.text.embeds, g.text.mask, g.audio)
    ut = single(x, t, g.negative.embeds, g.negative.mask, g.audio)
    u = single(x, t, g.negative.embeds, g.negative.mask, torch.zeros_like(g.audio))
    torch.testing.assert_close(out, u + 4.0 * (c - ut) + 2.5 * (ut - u))

    plain = Linear()
    torch.testing.assert_close(predict(plain, x, t, _guidance(1.0, 1.0), SamplerHooks()), c)
    assert len(plain.calls) == 1  # one pass without guidance

    multi = Linear()
    masks = torch.ones(3, 8, 8)
    out_multi = predict(multi, x, t, _guidance(4.0, 2.5, masks, streams=2), SamplerHooks())
    assert [c["x"].shape[0] for c in multi.calls] == [1, 1, 1]
    assert [c["text"].mean().item() for c in multi.calls] == [-1.0, 2.0, -1.0]
    assert all(c["ref_target_masks"] is masks for c in multi.calls) and out_multi.shape == x.shape
    with pytest.raises(ValueError, match="negative prompt"):
        predict(Linear(), x, t, replace(g, negative=None), SamplerHooks())


def test_hooks_count_and_stop() -> None:
    """progress(step, total, preview) counts steps; check() raises Interrupted once should_stop says so."""
    seen = []
    hooks = SamplerHooks(progress=lambda s, n, p: seen.append((s, n)), should_stop=lambda: len(seen) >= 2, total=5)
    hooks.check()
    hooks.step()
    hooks.check()
    hooks.step(torch.zeros(1))
    with pytest.raises(Interrupted, match="2 of 5"):
        hooks.check()
    assert seen == [(1, 5), (2, 5)]


def test_settings_follow_the_reference_demo() -> None:
    """Distilled v1.5 runs 8 steps without CFG; auto distils only with the DMD LoRA; v1.0 has no distilled mode."""
    s = SamplerSettings(steps=30, text_guidance=4, audio_guidance=3, distilled=True)
    on = s.effective("v1.5")
    assert (on.steps, on.text_guidance, on.audio_guidance, on.distilled) == (8, 1.0, 1.0, True)
    auto = replace(s, distilled="auto", lora=LORA_DISTILLATION).effective("v1.5")
    assert auto == replace(on, distilled=True, lora=LORA_DISTILLATION)
    for lora in (LORA_OTHER, LORA_NONE):  # a style LoRA (or none) keeps the caller's steps and guidance
        assert replace(s, distilled="auto", lora=lora).effective("v1.5") == replace(s, distilled=False, lora=lora)
    with pytest.raises(ValueError, match="v1.0 has none"):
        s.effective("v1.0")
    assert replace(s, distilled="auto", lora=LORA_DISTILLATION).effective("v1.0").steps == 30


class FakeDiT(Linear):
    """Linear + the KV-cache protocol; remembers the clean latents of every cache pass."""

    def forward(
        self, hidden_states, timestep, encoder_hidden_states, encoder_attention_mask=None, audio_embs=None, **kw
    ):
        if kw.get("return_kv"):
            self.calls.append({"cache": hidden_states.clone(), "audio": audio_embs, **kw})
            return torch.zeros_like(hidden_states), {0: (hidden_states, hidden_states)}
        return super().forward(hidden_states, timestep, encoder_hidden_states, encoder_attention_mask, audio_embs, **kw)


class FakeVAE:
    """8×8 average pooling per 4 frames as 'encoding', nearest upsampling as 'decoding' (counts its calls)."""

    def __init__(self) -> None:
        self.encoded: list[torch.Tensor] = []
        self.decodes = 0
        self.decoded_latents: list[int] = []  # latent frames of each decode call

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool3d(pixels, (1, 8, 8))[:, :, ::4]  # frames 0, 4, 8, ...: (F−1)/4+1 latent frames
        latent = pooled.mean(1, keepdim=True).expand(-1, 16, -1, -1, -1).contiguous()
        self.encoded.append(latent)
        return latent

    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        self.decodes += 1
        self.decoded_latents.append(latents.shape[2])
        frames = torch.cat([latents[:, :3, :1], latents[:, :3, 1:].repeat_interleave(4, dim=2)], dim=2)
        return torch.tanh(F.interpolate(frames, scale_factor=(1, 8, 8)))


@pytest.mark.parametrize("version", ["v1.0", "v1.5"])
def test_generate_video_orchestration(version: str) -> None:
    """Three segments: audio windows move on by 80 frames, the overlap is re-encoded, v1.0 denoises with the
    previous latents and v1.5 with the fresh encoding, both keep the fresh encoding, frames are trimmed."""
    fps, stride = (16, 2) if version == "v1.0" else (25, 1)
    frames_wanted = 200  # → 3 segments (93 + 80 + 80 = 253 generated)
    steps = int(frames_wanted / fps * fps * stride) + 400
    features = torch.randn(1, steps, 2, 3, generator=torch.Generator().manual_seed(0))
    audio = AudioFeatures(features, version, fps, stride, steps / (fps * stride), 1, frames_wanted / fps)
    text = TextEmbedding(torch.ones(1, 1, 3, 4), torch.ones(1, 3, dtype=torch.int64))
    image = torch.rand(1, 3, 1, 32, 32) * 2 - 1
    cond = VideoConditioning(text, text, audio, 32, 32, image)
    model, vae, seen = FakeDiT(), FakeVAE(), []
    settings = SamplerSettings(steps=2, text_guidance=1.0, audio_guidance=1.0, shift=3.0)
    hooks = SamplerHooks(progress=lambda s, n, p: seen.append((s, n)))
    video = generate_video(model, vae, version, cond, settings, hooks)

    assert video.frames.shape == (frames_wanted, 32, 32, 3) and video.plan.num_segments == 3
    assert vae.decodes == 3 and len(vae.encoded) == 3  # the image, then the overlap before segments 2 and 3
    # segments 1 and 2 whole (segment 2's last 13 frames condition segment 3); of segment 3 only frames 160..199:
    # 40 frames = 1 + ceil(39 / 4) = 11 latent frames
    assert vae.decoded_latents == [24, 24, 11] and video.plan.frames_used(2) == 40
    second = pixels_to_frames(vae.decode(video.segment_latents[1]))
    assert torch.equal(video.frames[93:173], second[13:])  # segment 2 adds its frames 13..92 after frame 92
    assert torch.equal(decode_segments(vae, video.segment_latents, video.plan), video.frames)
    assert vae.decoded_latents[4:] == [24, 24, 11]  # the Decode node's re-decode skips the same tail
    short = replace(video.plan, output_frames=50)
    assert torch.equal(decode_segments(vae, video.segment_latents, short), video.frames[:50])
    cont = build_schedule(version, 2, False, 3.0, continuation=True)
    assert seen[-1] == (2 + 2 * len(cont), 2 + 2 * len(cont))
    caches = [c for c in model.calls if "cache" in c]
    assert len(caches) == 2
    for segment, cache in enumerate(caches, start=1):
        prev, fresh = video.segment_latents[segment - 1], vae.encoded[segment]
        torch.testing.assert_close(cache["cache"][:, :, :1], vae.encoded[0])  # the reference = the image latent
        expected = prev[:, :, -4:] if version == "v1.0" else fresh
        torch.testing.assert_close(cache["cache"][:, :, 1:], expected)
        torch.testing.assert_close(video.segment_latents[segment][:, :, :4], fresh)
        window = gather_windows(features, 80 * segment * stride, 93, stride)
        torch.testing.assert_close(cache["audio"], window)
        assert cache["ref_img_index"] == 10 and cache["num_cond_latents"] == 5 and cache["num_ref_latents"] == 1


def test_a_tail_of_one_frame_is_not_generated() -> None:
    """3.76 s at 25 fps (94 frames, features padded to two whole segments as the reference does): one segment runs,
    its 93 frames are the video, and no continuation is denoised or decoded for the 94th."""
    features = torch.randn(1, 173, 2, 3, generator=torch.Generator().manual_seed(0))
    audio = AudioFeatures(features, "v1.5", 25, 1, 173 / 25, 1, 3.76)
    text = TextEmbedding(torch.ones(1, 1, 3, 4), torch.ones(1, 3, dtype=torch.int64))
    cond = VideoConditioning(text, text, audio, 32, 32, torch.rand(1, 3, 1, 32, 32) * 2 - 1)
    model, vae = FakeDiT(), FakeVAE()
    video = generate_video(model, vae, "v1.5", cond, SamplerSettings(steps=2, text_guidance=1.0, audio_guidance=1.0))
    assert (video.plan.num_segments, video.plan.dropped_frames, video.frames.shape[0]) == (1, 1, 93)
    assert vae.decodes == 1 and len(model.calls) == 2 and not any("cache" in c for c in model.calls)


def test_inputs_that_do_not_fit_together_are_refused() -> None:
    """Version mismatch, sizes not multiple of 16, two streams without masks, masks without a portrait."""
    text = TextEmbedding(torch.ones(1, 1, 3, 4), torch.ones(1, 3, dtype=torch.int64))
    audio = AudioFeatures(torch.zeros(1, 100, 2, 3), "v1.5", 25, 1, 4.0, 1, 3.0)
    two = AudioFeatures(torch.zeros(2, 100, 2, 3), "v1.5", 25, 1, 4.0, 2, 3.0)
    masked = replace(two, speaker_masks=torch.ones(3, 40, 40))
    image = torch.zeros(1, 3, 1, 32, 32)
    cases = [
        (VideoConditioning(text, text, audio, 32, 32, image), "v1.0", "made for v1.5"),
        (VideoConditioning(text, text, audio, 40, 32, None), "v1.5", "multiples of 16"),
        (VideoConditioning(text, text, audio, 32, 48, image), "v1.5", "portrait is"),
        (VideoConditioning(text, text, two, 32, 32, image), "v1.5", "speaker masks"),
        (VideoConditioning(text, text, masked, 32, 32, None), "v1.5", "needs a portrait"),
    ]
    for cond, version, message in cases:
        with pytest.raises(ValueError, match=message):
            generate_video(FakeDiT(), FakeVAE(), version, cond, SamplerSettings())
