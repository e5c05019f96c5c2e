"""Denoising-loop parity: at2v, ai2v, continuation and multi-speaker loops of every set, direct and chained.

Direct: the stored per-segment inputs (windowed audio, normalised image latent) go into `denoise_first_segment` /
`denoise_continuation`. Chained: the same case runs through the sampler's `SegmentSampler` from raw inputs (full audio
features windowed by our gather, raw VAE latents through our normalisation behind a stub VAE, masks at source size),
injecting only the stored noise and text embeddings. Every DiT call is also checked against the reference's log.
"""

from __future__ import annotations

import pytest
import torch

from pipeline.audio.types import AudioFeatures, version_spec
from pipeline.audio.windows import gather_windows, window_indices
from pipeline.imaging import resize_and_center_crop_masks
from pipeline.sampling.denoise import Continuation, denoise_continuation, denoise_first_segment
from pipeline.sampling.guidance import Guidance
from pipeline.sampling.sampler import SamplerSettings, SegmentSampler, VideoConditioning
from pipeline.sampling.schedules import build_schedule
from pipeline.text.encoder import TextEmbedding
from pipeline.vae.normalization import normalize_latents
from support import refvec
from support.dit_calls import DiTCallLog, refvec_dit

CASES = refvec.case_params("loop")


LOOP_CALL_FIELDS = ("batch", "T", "num_cond_latents", "return_kv", "kv_cache", "audio_batch", "multi")


def check_calls(log: DiTCallLog, case: refvec.RefCase) -> None:
    """The loop's DiT calls against the reference's log (timesteps logged flat, per call)."""
    log.check(case.spec["dit_calls"], LOOP_CALL_FIELDS, lambda ref, t: torch.tensor(ref["timestep"]).reshape(t.shape))


class StubVAE:
    """The vectors' VAE stub: encode() returns the stored raw latent, normalised by our VAE normalisation."""

    def __init__(self, raw: torch.Tensor, expected_input: tuple[int, ...]):
        self.raw, self.expected_input, self.calls = raw, expected_input, 0

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        assert tuple(pixels.shape) == self.expected_input, f"VAE got {tuple(pixels.shape)}"
        self.calls += 1
        return normalize_latents(self.raw)

    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        raise AssertionError("the loop vectors never decode")


def kind_of(case: refvec.RefCase) -> str:
    """at2v / ai2v / avc, from the inputs the case provides."""
    if "in.prev_latents" in case.inputs:
        return "avc"
    return "ai2v" if "in.image_latent_raw" in case.inputs else "at2v"


def texts(case: refvec.RefCase) -> tuple[TextEmbedding, TextEmbedding]:
    """Stored prompt and negative-prompt embeddings (the reference's encode_prompt was stubbed too)."""
    pos = TextEmbedding(case.tensor("in.prompt_embeds"), case.tensor("in.prompt_mask"))
    neg = TextEmbedding(case.tensor("in.negative_prompt_embeds"), case.tensor("in.negative_prompt_mask"))
    return pos, neg


def schedule_of(case: refvec.RefCase):
    """Our schedule for the case, checked against the reference's logged timesteps and sigmas."""
    p = case.params
    continuation = kind_of(case) == "avc"
    if continuation:
        assert p["enhance_hf"] == (not p["use_distill"])  # the tail is keyed on distillation
    schedule = build_schedule(
        case.version, p["num_inference_steps"], p["use_distill"], p["scheduler"]["shift"], continuation
    )
    torch.testing.assert_close(schedule.timesteps, torch.tensor(p["scheduler_timesteps"]), atol=1e-3, rtol=0)
    if "scheduler_sigmas" in p:
        torch.testing.assert_close(schedule.sigmas, torch.tensor(p["scheduler_sigmas"]), atol=1e-6, rtol=0)
    return schedule


def masks_of(case: refvec.RefCase) -> torch.Tensor | None:
    """Speaker masks resized / centre-cropped from the source image size to the generation size."""
    if "in.ref_target_masks" not in case.inputs:
        return None
    p = case.params
    return resize_and_center_crop_masks(case.tensor("in.ref_target_masks"), p["height_px"], p["width_px"])


@pytest.mark.parametrize("case", CASES)
def test_loop_direct(case: refvec.RefCase) -> None:
    """The segment loops on the stored per-segment inputs reproduce the reference latents."""
    case = refvec.require_case(case)
    p, model = case.params, refvec_dit(str(case.model_path("model_dir")))
    pos, neg = texts(case)
    guidance = Guidance(
        pos, neg, case.tensor("in.audio_emb"), p["text_guidance_scale"], p["audio_guidance_scale"], masks_of(case)
    )
    schedule = schedule_of(case)
    kind, noise = kind_of(case), case.tensor("in.noise")
    with DiTCallLog(model) as log:
        if kind == "avc":
            fresh = normalize_latents(case.tensor("in.cond_video_latent_raw"))
            n_cond = p["num_cond_latents"]
            denoise_cond = case.tensor("in.prev_latents")[:, :, -n_cond:] if p["use_vcond"] else fresh
            cont = Continuation(
                denoise_cond, fresh, case.tensor("in.ref_latent"), p["ref_img_index"], p["mask_frame_range"]
            )
            latents = denoise_continuation(model, noise, schedule, guidance, cont)
        else:
            image = None
            if kind == "ai2v":
                stored = "in.image_latent_normalized" in case.inputs
                raw = case.tensor("in.image_latent_raw")
                image = case.tensor("in.image_latent_normalized") if stored else normalize_latents(raw)
            latents = denoise_first_segment(model, noise, schedule, guidance, image)
    check_calls(log, case)
    case.compare_all({"out.latents": latents})


def full_features(case: refvec.RefCase, stride: int) -> torch.Tensor:
    """Full features [streams, L, S, A]: stored `full_audio_emb`, else rebuilt from the windows they were cut from."""
    windows = case.tensor("in.audio_emb")
    if "in.full_audio_emb" in case.inputs:
        full = case.tensor("in.full_audio_emb")[None]
        start = stride * (case.params["num_frames"] - case.params["num_cond_frames"]) if kind_of(case) == "avc" else 0
        indices = window_indices(start, windows.shape[1], stride, full.shape[1])
        assert torch.equal(indices, case.tensor("in.audio_window_indices"))
        return full
    streams, frames, width = windows.shape[0], windows.shape[1], windows.shape[2]
    full = torch.zeros(streams, stride * (frames - 1) + width, *windows.shape[3:])
    for i in range(frames):
        for j in range(width):
            full[:, max(0, stride * i + j - width // 2)] = windows[:, i, j]
    assert torch.equal(gather_windows(full, 0, frames, stride), windows)  # the stored windows are consistent
    return full


@pytest.mark.parametrize("case", CASES)
def test_loop_chained(case: refvec.RefCase) -> None:
    """The same case through the sampler from raw inputs: our window gather, normalisation and mask crop."""
    case = refvec.require_case(case)
    p, model, kind = case.params, refvec_dit(str(case.model_path("model_dir"))), kind_of(case)
    spec = version_spec(case.version)
    full = full_features(case, spec.stride)
    masks = case.tensor("in.ref_target_masks") if "in.ref_target_masks" in case.inputs else None
    audio = AudioFeatures(
        full, case.version, spec.video_fps, spec.stride, full.shape[1] / spec.feature_rate, full.shape[0],
        speaker_masks=masks,
    )  # fmt: skip
    height, width = p["height_px"], p["width_px"]
    pos, neg = texts(case)
    image = torch.zeros(1, 3, 1, height, width) if kind == "ai2v" else None
    cond = VideoConditioning(pos, neg, audio, height, width, image)
    settings = SamplerSettings(
        steps=p["num_inference_steps"], text_guidance=p["text_guidance_scale"],
        audio_guidance=p["audio_guidance_scale"], shift=p["scheduler"]["shift"], distilled=p["use_distill"],
        ref_img_index=p.get("ref_img_index", 10), mask_frame_range=p.get("mask_frame_range", 3),
        frames_per_segment=p["num_frames"], overlap_frames=p.get("num_cond_frames", 13),
    )  # fmt: skip
    noise = case.tensor("in.noise")
    with DiTCallLog(model) as log:
        if kind == "avc":
            vae = StubVAE(case.tensor("in.cond_video_latent_raw"), tuple(p["vae_encode_input_shapes"][0]))
            sampler = SegmentSampler(model, vae, case.version, cond, settings)
            prev_frames = torch.zeros(p["num_frames"], height, width, 3, dtype=torch.uint8)
            latents = sampler.next(1, noise, case.tensor("in.prev_latents"), prev_frames, case.tensor("in.ref_latent"))
        else:
            raw = case.tensor("in.image_latent_raw") if kind == "ai2v" else torch.zeros(0)
            vae = StubVAE(raw, (1, 3, 1, height, width))
            latents = SegmentSampler(model, vae, case.version, cond, settings).first(noise)
    assert vae.calls == (0 if kind == "at2v" else 1)
    check_calls(log, case)
    case.compare_all({"out.latents": latents})
