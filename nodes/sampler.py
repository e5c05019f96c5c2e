"""Avatar Sampler: the whole talking video from model, portrait, audio and text, with one progress bar and Cancel."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from comfy_api.latest import io, ui

from ..pipeline.limits import MAX_GUIDANCE, MAX_SEED, MAX_STEPS, MIN_GUIDANCE, MIN_STEPS, RECOMMENDED_STEPS
from ..pipeline.memory.estimate import VideoShape
from ..pipeline.memory.plan import plan_summary
from ..pipeline.sampling.hooks import Interrupted, SamplerHooks
from ..pipeline.sampling.mode import DISTILLED_CHOICES, LORA_NONE, SamplingMode
from ..pipeline.sampling.sampler import GeneratedVideo, SamplerSettings, VideoConditioning, generate_video
from ..pipeline.sampling.schedules import find_scheduler_dir
from ..pipeline.sampling.segments import MAX_DROPPED_TAIL_FRAMES, NEW_FRAMES_PER_SEGMENT, OVERLAP_FRAMES, SEGMENT_FRAMES
from ..pipeline.versions import VERSIONS, get_version
from . import model_files as mf
from .choices import check_choices
from .managed import SamplerMemory
from .payloads import AudioEmbedsPayload, ModelHandle, NamedModel
from .portrait_encode import PortraitPayload
from .runtime import NodeProgress, cancellable
from .text_encode import TextEmbedsPayload
from .types import CATEGORY, AudioEmbeds, AvatarModel, AvatarVAE, AvatarVideo, PortraitLatent, TextEmbeds

log = logging.getLogger(__name__)

V15 = VERSIONS["v1.5"]  # the version with a distilled mode, named in the tooltips


@dataclass
class VideoPayload:
    """LONGCAT_VIDEO: the sampler's result (frames decoded while chaining segments, and every segment's latents)."""

    result: GeneratedVideo
    vae: Any  # the NamedModel the frames were decoded with (Decode reuses them when it gets the same VAE)
    info: str


def scheduler_dir(version: str) -> Path | None:
    """The official scheduler/ folder of this version, when the layout is present (its shift is used)."""
    found = (find_scheduler_dir(root, version) for root in mf.longcat_roots())
    return next((folder for folder in found if folder is not None), None)


def speaker_features(audio: AudioEmbedsPayload, portrait: PortraitPayload, model: ModelHandle) -> Any:
    """The audio features, with speaker masks at the portrait's size when two people speak."""
    features = audio.features
    if audio.layout is None:
        return features
    if not model.loaded.multi_speaker:
        raise ValueError(
            "two speakers need a multi-speaker model: LongCat-Video-Avatar/avatar_multi for v1.0 (or set the "
            "loader's speakers to 'multi'); v1.5's base_model serves one and two speakers"
        )
    masks = audio.layout.build_masks(portrait.source_height, portrait.source_width)
    return replace(features, speaker_masks=masks)


def check_versions(model: ModelHandle, audio: AudioEmbedsPayload) -> None:
    """The audio encoder must match the DiT's version (its features have a version-specific layout and rate)."""
    if audio.features.version != model.version:
        needed = get_version(model.version).encoder_name
        raise ValueError(
            f"the audio was encoded for {audio.features.version} but the model is {model.version}: load {needed} "
            "in LongCat Avatar Audio Encoder Loader"
        )


def guidance_widgets() -> list[io.Input]:
    """Steps, guidance scales, shift and seed."""
    return [
        io.Int.Input(
            "steps",
            default=25,
            min=MIN_STEPS,
            max=MAX_STEPS,
            tooltip=f"Denoising steps per segment ({RECOMMENDED_STEPS[0]}-{RECOMMENDED_STEPS[1]} recommended; the "
            f"reference uses 50). Distilled mode always runs its {V15.distill_steps} steps.",
        ),
        io.Float.Input(
            "text_guidance",
            default=4.0,
            min=MIN_GUIDANCE,
            max=MAX_GUIDANCE,
            step=0.1,
            round=0.01,
            tooltip="How strongly the prompt (vs. the negative prompt) steers the video. 1 turns text "
            "guidance off. Reference default 4.",
        ),
        io.Float.Input(
            "audio_guidance",
            default=3.0,
            min=MIN_GUIDANCE,
            max=MAX_GUIDANCE,
            step=0.1,
            round=0.01,
            tooltip="How strongly the speech drives the lips: 3-5 syncs best; higher exaggerates the mouth. "
            "1 turns audio guidance off.",
        ),
        io.Float.Input(
            "shift",
            default=0.0,
            min=0.0,
            max=30.0,
            step=0.5,
            round=0.01,
            tooltip="Timestep shift of the flow-matching schedule. 0: the checkpoint's scheduler config "
            f"({V15.default_shift:g} for v1.5; {VERSIONS['v1.0'].default_shift:g} for v1.0).",
        ),
        io.Int.Input(
            "seed",
            default=42,
            min=0,
            max=MAX_SEED,
            control_after_generate=True,
            tooltip="Noise seed: the same seed and inputs give the same video on any device.",
        ),
    ]


def segment_widgets() -> list[io.Input]:
    """How continuation segments use the portrait, and distilled sampling."""
    return [
        io.Int.Input(
            "ref_img_index",
            default=10,
            min=-30,
            max=60,
            tooltip="Continuation segments: the virtual time (in latent frames, 4 video frames each) at which the "
            "portrait is placed. 0-24 (default 10) keeps the identity most consistent; values outside, e.g. -10 or "
            "30, reduce repeated actions (the reference's advice).",
        ),
        io.Int.Input(
            "mask_frame_range",
            default=3,
            min=0,
            max=20,
            tooltip="Continuation segments: latent frames within this distance of ref_img_index may not "
            "look at the portrait, which helps against repeated actions; very large values may add artifacts. "
            "0 disables (default 3).",
        ),
        io.Combo.Input(
            "distilled",
            options=list(DISTILLED_CHOICES),
            default="auto",
            tooltip=f"Distilled sampling: {V15.distill_steps} steps without guidance (for the v1.5 DMD LoRA). "
            "auto: on only when the model carries the DMD distillation LoRA (lora/dmd_lora.safetensors or a file "
            "with its tensors); any other LoRA keeps your steps and guidance. The info says which mode ran and why. "
            "v1.0 has no distilled mode.",
        ),
    ]


class AvatarSampler(io.ComfyNode):
    """Generates the talking video: segments planned to cover the whole audio, chained, trimmed to its length."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """Model, VAE, the three conditionings, and the sampling widgets."""
        return io.Schema(
            node_id="LongCatAvatarSampler",
            display_name="LongCat Avatar Sampler",
            category=CATEGORY,
            description=f"Generates the whole video in {SEGMENT_FRAMES}-frame segments ({OVERLAP_FRAMES} overlapping "
            f"frames, {NEW_FRAMES_PER_SEGMENT} new each) that cover the audio, with text and audio guidance, and trims "
            f"it to the audio's length (a last segment that would keep only {MAX_DROPPED_TAIL_FRAMES} frames or fewer "
            "is not generated; Video Combine then cuts the audio to the video).",
            inputs=[
                AvatarModel.Input("model", tooltip="From LongCat Avatar Model Loader."),
                AvatarVAE.Input("vae", tooltip="From LongCat Avatar VAE Loader (chains the segments)."),
                PortraitLatent.Input("portrait", tooltip="From LongCat Avatar Portrait Encode (sets the size)."),
                AudioEmbeds.Input("audio_embeds", tooltip="From LongCat Avatar Audio Encode."),
                TextEmbeds.Input("text_embeds", tooltip="From LongCat Avatar Text Encode."),
                *guidance_widgets(),
                *segment_widgets(),
            ],
            outputs=[
                AvatarVideo.Output(display_name="video_latents", tooltip="The generated video for Decode."),
                io.String.Output(display_name="info", tooltip="What was run: mode, steps, segments, frames, shift."),
            ],
        )

    @classmethod
    def validate_inputs(cls, distilled: str) -> bool | str:
        """Refuse an unknown distilled value before anything runs (ComfyUI does not check V3 combos)."""
        return check_choices(distilled=(distilled, DISTILLED_CHOICES))

    @classmethod
    def execute(
        cls,
        model: ModelHandle,
        vae: NamedModel,
        portrait: PortraitPayload,
        audio_embeds: AudioEmbedsPayload,
        text_embeds: TextEmbedsPayload,
        steps: int,
        text_guidance: float,
        audio_guidance: float,
        shift: float,
        seed: int,
        ref_img_index: int,
        mask_frame_range: int,
        distilled: str,
    ) -> io.NodeOutput:
        """Run the engine's whole-video sampler with ComfyUI progress and Cancel."""
        settings = SamplerSettings(
            steps=steps,
            text_guidance=text_guidance,
            audio_guidance=audio_guidance,
            shift=shift if shift > 0 else None,
            seed=seed,
            distilled=distilled,
            lora=LORA_NONE if model.loaded.lora is None else model.loaded.lora.role,
            ref_img_index=ref_img_index,
            mask_frame_range=mask_frame_range,
            scheduler_dir=scheduler_dir(model.version),
        )
        try:
            check_versions(model, audio_embeds)
            features = speaker_features(audio_embeds, portrait, model)
            mode = settings.mode(model.version)  # the engine's decision; read here for the progress bar and info
        except ValueError as error:
            raise ValueError(f"LongCat Avatar Sampler: {error}") from error
        conditioning = VideoConditioning(
            text=text_embeds.positive,
            negative=text_embeds.negative,
            audio=features,
            height=portrait.height,
            width=portrait.width,
            image=portrait.portrait.pixels,
            image_latent=portrait.portrait.latent,
        )
        log.info("LongCat Avatar Sampler: %s; model %s", mode.note, model.describe())
        progress = NodeProgress(total=mode.steps)
        memory = sampler_memory(model, vae, conditioning, settings, mode)
        hooks = SamplerHooks(
            progress=progress, should_stop=progress.should_stop, on_plan=progress.publish_segments, prepare=memory
        )
        with cancellable(Interrupted), torch.inference_mode():
            result = generate_video(model.loaded.model, vae.model, model.version, conditioning, settings, hooks)
        info = report(model, mode, result, settings, portrait)
        if memory is not None:
            info += "\nMemory plan of this run:\n" + plan_summary(memory.plan)
        log.info("LongCat Avatar Sampler: %s", info)
        return io.NodeOutput(VideoPayload(result, vae, info), info, ui=ui.PreviewText(info))


def sampler_memory(
    model: ModelHandle, vae: NamedModel, cond: VideoConditioning, settings: SamplerSettings, mode: SamplingMode
) -> SamplerMemory | None:
    """The run's shapes, memory plan and phase loading (None when a model was not made by our loaders); on a GPU
    the DiT runs with the plan's activation options."""
    if model.patcher is None or vae.patcher is None:
        return None
    shape = VideoShape(
        cond.height,
        cond.width,
        int(cond.text.embeds.shape[2]),
        settings.frames_per_segment,
        settings.overlap_frames,
        guidance=not mode.distilled and (mode.text_guidance > 1 or mode.audio_guidance > 1),
        speakers=cond.audio.num_speakers,
    )
    memory = SamplerMemory(model.loaded, model.patcher, vae.model, vae.patcher, shape)
    if memory.plan.vram is not None:
        model.loaded.model.set_activation_options(memory.plan.options)
    return memory


def report(
    model: ModelHandle, mode: SamplingMode, result: GeneratedVideo, settings: SamplerSettings, portrait: PortraitPayload
) -> str:
    """The info text: mode (and overridden widgets), segments, frames, size, seed."""
    frames, plan = int(result.frames.shape[0]), result.plan
    tail = ""
    if plan.dropped_frames:  # the planner did not run a whole segment for them; Video Combine cuts the audio
        cut = plan.dropped_frames
        tail = f" The audio's last {cut} frame(s) ({cut / result.fps:.2f} s) get no segment; Video Combine cuts them."
    return (
        f"LongCat-Video-Avatar {model.version}: {mode.note}. {plan.num_segments} segment(s), {frames} frames "
        f"at {result.fps} fps ({frames / result.fps:.2f} s), {portrait.width}x{portrait.height}, seed {settings.seed}."
        + tail
    )
