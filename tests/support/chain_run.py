"""Drives a refvec `chain` case (a whole multi-segment video) through our own engine and records what it did.

Nothing of the chain is re-implemented here: the DiT and the VAE come from our loaders, the portrait from
`prepare_portrait`, the audio windows from `AudioFeatures`, and the segments from the sampler (`generate_video`, or
`SegmentSampler` + `decode_segment` + `FrameSink` for the stepwise mode). The only injection is the stored noise.
What the engine encodes and decodes is copied by a recorder around our `WanVAE` (as the reference's was), and what
the DiT receives by a forward pre-hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch

from pipeline.audio.types import AudioFeatures, version_spec
from pipeline.portrait import prepare_portrait
from pipeline.sampling.noise import NoiseSource
from pipeline.sampling.sampler import (
    FrameSink,
    SamplerSettings,
    SegmentSampler,
    VideoConditioning,
    decode_segment,
    generate_video,
)
from pipeline.text.encoder import TextEmbedding
from pipeline.vae.loader import load_wan_vae
from pipeline.vae.pixels import frames_to_pixels
from pipeline.vae.wan_vae import WanVAE
from support.dit_calls import DiTCallLog, refvec_dit
from support.refvec import RefCase

PIXEL_LEVELS = 255  # uint8 full scale


@cache
def tiny_vae(path: str) -> WanVAE:
    """The case's tiny Wan VAE through our loader (its own config: base_dim 4, one res block)."""
    return WanVAE(load_wan_vae(path, dtype=torch.float32))


class RecordingVAE:
    """Our WanVAE behind a recorder that copies every encode (pixels in, latents out) and every decoded segment."""

    def __init__(self, vae: WanVAE):
        self.vae = vae
        self.encoded: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.decoded: list[torch.Tensor] = []

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """WanVAE.encode, recorded."""
        latents = self.vae.encode(pixels)
        self.encoded.append((pixels.clone(), latents.clone()))
        return latents

    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        """WanVAE.decode (float pixels; the sampler decodes through `decode_frames`)."""
        return self.vae.decode(latents, tiled)

    def decode_frames(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        """WanVAE.decode_frames (what `decode_segment` uses), recorded."""
        frames = self.vae.decode_frames(latents, tiled)
        self.decoded.append(frames.clone())
        return frames


def stored_noise(case: RefCase) -> NoiseSource:
    """The reference's `latents=` of each segment (`in.noise_seg{k}`), by 0-based segment index."""

    def noise(segment: int, shape: tuple[int, ...]) -> torch.Tensor:
        stored = case.tensor(f"in.noise_seg{segment + 1}")
        assert tuple(stored.shape) == tuple(shape), f"segment {segment + 1}: noise {tuple(stored.shape)} != {shape}"
        return stored.clone()

    return noise


def audio_features(case: RefCase) -> AudioFeatures:
    """Our AudioFeatures over the case's ONE full embedding: its length is what the demo's padding gave."""
    spec = version_spec(case.version)
    full = case.tensor("in.full_audio_emb")[None]  # one speaker stream
    return AudioFeatures(full, case.version, spec.video_fps, spec.stride, full.shape[1] / spec.feature_rate, 1)


def settings_of(case: RefCase) -> SamplerSettings:
    """The case's schedule, guidance and geometry (53 frames, 13 overlap, ref index, mask range) as our settings."""
    p = case.params
    return SamplerSettings(
        steps=p["num_inference_steps"],
        text_guidance=p["text_guidance_scale"],
        audio_guidance=p["audio_guidance_scale"],
        shift=p["scheduler"]["shift"],
        distilled=p["use_distill"],
        ref_img_index=p["ref_img_index"],
        mask_frame_range=p["mask_frame_range"],
        frames_per_segment=p["num_frames"],
        overlap_frames=p["num_cond_frames"],
    )


def conditioning(case: RefCase) -> VideoConditioning:
    """The portrait (uint8 → ComfyUI IMAGE → our portrait preparation), stored text embeddings, our audio."""
    p = case.params
    image = case.tensor("in.image").to(torch.float32)[None] / PIXEL_LEVELS  # what ComfyUI's LoadImage hands over
    portrait = prepare_portrait(image, mode="custom", width=p["width_px"], height=p["height_px"])
    pos = TextEmbedding(case.tensor("in.prompt_embeds"), case.tensor("in.prompt_mask"))
    neg = TextEmbedding(case.tensor("in.negative_prompt_embeds"), case.tensor("in.negative_prompt_mask"))
    return VideoConditioning(pos, neg, audio_features(case), portrait.height, portrait.width, portrait.pixels)


def pixels_as_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """VAE input [1, 3, F, H, W] in [−1, 1] → the uint8 it was made from, asserting the inverse is exact."""
    levels = ((pixels + 1) / 2 * PIXEL_LEVELS).round().clamp(0, PIXEL_LEVELS).to(torch.uint8)
    again = frames_to_pixels(levels[0].permute(1, 2, 3, 0))
    assert torch.equal(again, pixels), "the encoded conditioning pixels are not an exact uint8 round trip"
    return levels


@dataclass
class ChainRun:
    """What one run produced, under the case's output names, and the DiT calls it made."""

    outputs: dict[str, torch.Tensor]
    log: DiTCallLog


def _engine(case: RefCase) -> tuple[torch.nn.Module, RecordingVAE]:
    """The case's DiT and a recorder around its VAE, both through our loaders."""
    model = refvec_dit(str(case.model_path("model_dir")))
    return model, RecordingVAE(tiny_vae(str(case.model_path("vae_dir"))))


def _conditioning_outputs(k: int, vae: RecordingVAE, log: DiTCallLog) -> dict[str, torch.Tensor]:
    """What continuation segment k (1-based, ≥ 2) conditioned on: the pixels it encoded (encode 0 is the portrait),
    their latents, and the [ref | clean] latents of its KV-cache pass."""
    pixels, latents = vae.encoded[k - 1]
    return {
        f"out.cond_pixels_seg{k}": pixels_as_uint8(pixels),
        f"out.cond_latents_seg{k}": latents,
        f"out.dit_clean_latents_seg{k}": log.clean[k - 2],
    }


def run_end_to_end(case: RefCase) -> ChainRun:
    """The whole video through `generate_video` from the raw inputs; intermediate tensors from the recorders."""
    model, vae = _engine(case)
    with DiTCallLog(model) as log:
        video = generate_video(
            model, vae, case.version, conditioning(case), settings_of(case), noise=stored_noise(case)
        )
    segments = case.params["num_segments"]
    assert video.plan.num_segments == segments, f"planned {video.plan.num_segments} segments, case has {segments}"
    assert len(vae.encoded) == segments and len(vae.decoded) == segments  # portrait + one clip per continuation
    outputs = {"out.video": video.frames}
    for k in range(1, segments + 1):
        outputs[f"out.latents_seg{k}"] = video.segment_latents[k - 1]
        outputs[f"out.frames_seg{k}"] = vae.decoded[k - 1]
        if k > 1:
            outputs.update(_conditioning_outputs(k, vae, log))
    return ChainRun(outputs, log)


def run_stepwise(case: RefCase) -> ChainRun:
    """Segment 1 from the raw inputs, then each segment k from the STORED frames and latents of segment k−1 and
    the stored reference latent (`out.latents_seg1[:, :, :1]`), through the sampler's own segment steps."""
    (model, vae), settings, noise = _engine(case), settings_of(case), stored_noise(case)
    sampler = SegmentSampler(model, vae, case.version, conditioning(case), settings)
    shape, sink = tuple(case.tensor("in.noise_seg1").shape), FrameSink(sampler.plan)
    ref_latent = case.tensor("out.latents_seg1")[:, :, :1]
    outputs: dict[str, torch.Tensor] = {}
    with DiTCallLog(model) as log:
        for k in range(1, sampler.plan.num_segments + 1):
            if k == 1:
                latents = sampler.first(noise(0, shape))
            else:
                prev_latents, prev_frames = (
                    case.tensor(f"out.latents_seg{k - 1}"),
                    case.tensor(f"out.frames_seg{k - 1}"),
                )
                latents = sampler.next(k - 1, noise(k - 1, shape), prev_latents, prev_frames, ref_latent)
                outputs.update(_conditioning_outputs(k, vae, log))
            outputs[f"out.latents_seg{k}"] = latents
            outputs[f"out.frames_seg{k}"] = decode_segment(vae, latents, settings.tiled_decode)
            sink.put(k - 1, outputs[f"out.frames_seg{k}"])
    outputs["out.video"] = sink.frames
    return ChainRun(outputs, log)
