"""The whole-video sampler: plans the segments, runs the first and continuation segments, decodes and trims."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from ..audio.types import AudioFeatures
from ..imaging import resize_and_center_crop_masks
from ..limits import SIZE_MULTIPLE
from ..memory.phases import CONTINUATION_SEGMENT, DECODE, FIRST_SEGMENT
from ..text.encoder import TextEmbedding
from ..vae.pixels import frames_to_pixels, pixels_to_frames
from ..versions import get_version
from .denoise import Continuation, denoise_continuation, denoise_first_segment
from .guidance import Guidance
from .hooks import SamplerHooks
from .mode import LORA_NONE, SamplingMode, sampling_mode
from .noise import VAE_SPATIAL, NoiseSource, latent_shape, seeded_noise
from .schedules import build_schedule, resolve_shift
from .segments import OVERLAP_FRAMES, SEGMENT_FRAMES, SegmentPlan, frames_covering, plan_segments


class LatentCodec(Protocol):
    """What the sampler needs from a VAE (WanVAE; parity tests pass one returning the stored reference latents)."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [1, 3, F, H, W] in [−1, 1] → normalised latents."""
        ...

    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        """Normalised latents → pixels [1, 3, F, H, W] in [−1, 1]."""
        ...


@dataclass(frozen=True)
class SamplerSettings:
    """User-facing sampling options; the defaults are the reference demo's."""

    steps: int = 50  # demo default for full sampling (the distilled schedule has its own fixed count)
    text_guidance: float = 4.0  # demo default; 1.0 disables text CFG
    audio_guidance: float = 4.0  # demo default; LongCat-Video's README recommends 3–5
    shift: float | None = None  # None: the checkpoint's scheduler_config.json, else the per-version default
    seed: int = 42  # demo default (global_seed 42 on rank 0)
    distilled: bool | str = False  # "on" (True), "off" (False) or "auto": on only when `lora` is the DMD LoRA
    lora: str = LORA_NONE  # which LoRA the model carries (none, the DMD distillation LoRA, another): decides auto
    ref_img_index: int = 10  # demo default: the reference sits at virtual latent time 10
    mask_frame_range: int = 3  # demo default: noisy frames within ±3 of that time skip the reference
    frames_per_segment: int = SEGMENT_FRAMES
    overlap_frames: int = OVERLAP_FRAMES
    tiled_decode: bool = False
    scheduler_dir: str | Path | None = None  # a checkpoint's scheduler/ folder, read for the shift

    def mode(self, version: str) -> SamplingMode:
        """Distilled or full sampling, decided once for the node, the command line and the engine (mode.py)."""
        return sampling_mode(version, self.distilled, self.lora, self.steps, self.text_guidance, self.audio_guidance)

    def effective(self, version: str) -> SamplerSettings:
        """The settings the reference really uses: its mode's steps, guidance scales and schedule."""
        mode = self.mode(version)
        return replace(
            self,
            steps=mode.steps,
            text_guidance=mode.text_guidance,
            audio_guidance=mode.audio_guidance,
            distilled=mode.distilled,
        )


@dataclass
class VideoConditioning:
    """Everything a video is generated from; the image is optional (at2v without it)."""

    text: TextEmbedding
    negative: TextEmbedding | None
    audio: AudioFeatures
    height: int
    width: int
    image: torch.Tensor | None = None  # [1, 3, 1, H, W] in [−1, 1] at the generation size
    image_latent: torch.Tensor | None = None  # its normalised VAE latent, when already encoded (skips encoding)


@dataclass
class GeneratedVideo:
    """uint8 frames [N, H, W, 3] at the model's native fps, trimmed to the audio, and the latents of every segment."""

    frames: torch.Tensor
    fps: int
    segment_latents: list[torch.Tensor]
    plan: SegmentPlan


def output_frame_count(audio: AudioFeatures) -> int:
    """Frames at the native fps covering the original (unpadded) audio."""
    duration = audio.source_duration_s or audio.duration_s
    return frames_covering(duration, audio.fps)


class SegmentSampler:
    """Runs the segments of one video with shared schedules, guidance settings and progress accounting."""

    def __init__(
        self,
        model: nn.Module,
        codec: LatentCodec,
        version: str,
        conditioning: VideoConditioning,
        settings: SamplerSettings,
        hooks: SamplerHooks | None = None,
    ):
        _validate(version, conditioning)
        self.model, self.codec, self.version, self.cond = model, codec, version, conditioning
        self.settings = s = settings.effective(version)
        shift = resolve_shift(version, s.scheduler_dir, s.shift)
        self.first_schedule = build_schedule(version, s.steps, s.distilled, shift)
        self.next_schedule = build_schedule(version, s.steps, s.distilled, shift, continuation=True)
        self.plan = plan_segments(output_frame_count(conditioning.audio), s.frames_per_segment, s.overlap_frames)
        masks = conditioning.audio.speaker_masks
        self.masks = (
            None if masks is None else resize_and_center_crop_masks(masks, conditioning.height, conditioning.width)
        )
        self.hooks = hooks or SamplerHooks()
        continuations = (len(self.next_schedule),) * (self.plan.num_segments - 1)
        self.hooks.plan((len(self.first_schedule), *continuations))

    def guidance(self, segment: int) -> Guidance:
        """Prompts, scales, speaker masks and this segment's audio windows [streams, F, 5, S, A]."""
        audio = self.cond.audio.windows(self.plan.start_frame(segment), self.plan.frames_per_segment)
        s = self.settings
        return Guidance(self.cond.text, self.cond.negative, audio, s.text_guidance, s.audio_guidance, self.masks)

    def first(self, noise: torch.Tensor) -> torch.Tensor:
        """Segment 0: ai2v when an image is given (encoded with the codec), else at2v."""
        image_latent = self.cond.image_latent
        if image_latent is None and self.cond.image is not None:
            image_latent = self.codec.encode(self.cond.image)
        return denoise_first_segment(self.model, noise, self.first_schedule, self.guidance(0), image_latent, self.hooks)

    def next(
        self, segment: int, noise: torch.Tensor, prev_latents: torch.Tensor, prev_frames: torch.Tensor,
        ref_latent: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """Continuation segment: re-encode the previous segment's last overlap frames, then denoise the rest."""
        fresh = self.codec.encode(frames_to_pixels(prev_frames[-self.plan.overlap_frames :]))
        n_cond = self.plan.cond_latents
        denoise_cond = prev_latents[:, :, -n_cond:] if get_version(self.version).latent_stitching else fresh
        s = self.settings
        cont = Continuation(denoise_cond, fresh, ref_latent, s.ref_img_index, s.mask_frame_range)
        return denoise_continuation(self.model, noise, self.next_schedule, self.guidance(segment), cont, self.hooks)


def _validate(version: str, cond: VideoConditioning) -> None:
    """Actionable errors for inputs that do not fit together."""
    if cond.audio.version != version:
        raise ValueError(f"the audio features were made for {cond.audio.version} but the model is {version}")
    if cond.height % SIZE_MULTIPLE or cond.width % SIZE_MULTIPLE:
        raise ValueError(f"width and height must be multiples of {SIZE_MULTIPLE}, got {cond.width}x{cond.height}")
    if cond.image is not None and tuple(cond.image.shape[-2:]) != (cond.height, cond.width):
        raise ValueError(f"the portrait is {tuple(cond.image.shape[-2:])}, expected {(cond.height, cond.width)}")
    latent, grid = cond.image_latent, (cond.height // VAE_SPATIAL, cond.width // VAE_SPATIAL)
    if latent is not None and tuple(latent.shape[-2:]) != grid:
        raise ValueError(f"the portrait latent is {tuple(latent.shape[-2:])}, expected {grid}")
    if cond.audio.speaker_masks is not None and cond.image is None and cond.image_latent is None:
        raise ValueError("multi-speaker generation needs a portrait: the speaker masks refer to the image (ai2v only)")
    if cond.audio.num_streams > 1 and cond.audio.speaker_masks is None:
        raise ValueError("two or more audio streams need speaker masks (which region of the image is which person)")


def decode_segment(
    codec: LatentCodec, latents: torch.Tensor, tiled: bool, latent_frames: int | None = None
) -> torch.Tensor:
    """One segment's latents → uint8 frames [F, H, W, 3] (through the codec's own `decode_frames` when it has one);
    only the first `latent_frames` latent frames when given (`SegmentPlan.latents_used`)."""
    latents = latents if latent_frames is None else latents[:, :, :latent_frames]
    direct = getattr(codec, "decode_frames", None)
    if direct is not None:
        return direct(latents, tiled=tiled)
    return pixels_to_frames(codec.decode(latents, tiled=tiled))


class FrameSink:
    """The trimmed output video, filled in place segment by segment (no second copy of a long video)."""

    def __init__(self, plan: SegmentPlan):
        self.plan = plan
        self.frames: torch.Tensor | None = None

    def put(self, segment: int, frames: torch.Tensor) -> None:
        """Store a decoded segment; continuation segments drop their overlap frames (already in the video)."""
        skip = self.plan.overlap_frames if segment else 0
        if self.frames is None:
            self.frames = torch.empty((self.plan.output_frames, *frames.shape[1:]), dtype=frames.dtype)
        start = self.plan.start_frame(segment) + skip
        count = max(0, min(frames.shape[0] - skip, self.plan.output_frames - start))
        self.frames[start : start + count] = frames[skip : skip + count]


def decode_segments(
    codec: LatentCodec,
    segment_latents: list[torch.Tensor],
    plan: SegmentPlan,
    tiled: bool = False,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Re-decode saved segment latents to the trimmed video (what generate_video returns), one segment at a time.

    `progress(done)` runs before each segment and after the last with the number decoded so far (it may raise to
    cancel).
    """
    sink = FrameSink(plan)
    for segment, latents in enumerate(segment_latents):
        if progress is not None:
            progress(segment)
        sink.put(segment, decode_segment(codec, latents, tiled, plan.latents_used(segment)))
    if progress is not None:
        progress(len(segment_latents))
    return sink.frames


def generate_video(
    model: nn.Module,
    codec: LatentCodec,
    version: str,
    conditioning: VideoConditioning,
    settings: SamplerSettings,
    hooks: SamplerHooks | None = None,
    noise: NoiseSource | None = None,
) -> GeneratedVideo:
    """Generate the whole talking video: segments covering the audio (`plan_segments`), decoded, trimmed to the audio.

    `noise` replaces the seeded initial noise of each segment (the parity tests inject the reference's).
    """
    sampler = SegmentSampler(model, codec, version, conditioning, settings, hooks)
    plan, tiled, hooks = sampler.plan, sampler.settings.tiled_decode, sampler.hooks
    noise = noise or seeded_noise(sampler.settings.seed)
    shape = latent_shape(plan.frames_per_segment, conditioning.height, conditioning.width)
    hooks.enter(FIRST_SEGMENT)
    latents = sampler.first(noise(0, shape))
    hooks.enter(DECODE)
    frames = decode_segment(codec, latents, tiled, plan.latents_used(0))
    sink, segment_latents, ref_latent = FrameSink(plan), [latents], latents[:, :, :1].clone()
    sink.put(0, frames)
    for segment in range(1, plan.num_segments):
        hooks.enter(CONTINUATION_SEGMENT)
        latents = sampler.next(segment, noise(segment, shape), latents, frames, ref_latent)
        hooks.enter(DECODE)
        frames = decode_segment(codec, latents, tiled, plan.latents_used(segment))
        sink.put(segment, frames)
        segment_latents.append(latents)
    return GeneratedVideo(sink.frames, conditioning.audio.fps, segment_latents, plan)
