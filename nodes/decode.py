"""Decode: the sampler's video → IMAGE frames at the model's native fps (decoded again only for another VAE)."""

from __future__ import annotations

import logging
from typing import Any

import comfy.model_management as mm
import comfy.utils
import torch
from comfy_api.latest import io

from ..pipeline.sampling.sampler import GeneratedVideo, decode_segments
from ..pipeline.sampling.segments import OVERLAP_FRAMES
from ..pipeline.versions import native_fps_text
from .managed import decode_phase
from .payloads import NamedModel
from .runtime import cancellable
from .sampler import VideoPayload
from .types import CATEGORY, AvatarVAE, AvatarVideo

log = logging.getLogger(__name__)


def decode_with_progress(vae: Any, result: GeneratedVideo, tiled: bool) -> torch.Tensor:
    """Decode segment by segment (later ones drop their overlap), trim to the audio; progress + Cancel per segment."""
    total = len(result.segment_latents)
    bar = comfy.utils.ProgressBar(total)

    def progress(done: int) -> None:
        mm.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, total)

    return decode_segments(vae, result.segment_latents, result.plan, tiled, progress)


class Decode(io.ComfyNode):
    """Turns the generated video into IMAGE frames (and tells Video Combine their frame rate)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """VAE, the sampler's video, tiling."""
        return io.Schema(
            node_id="LongCatAvatarDecode",
            display_name="LongCat Avatar Decode",
            category=CATEGORY,
            description="The video as IMAGE frames, trimmed to the audio. With the sampler's VAE these are the "
            "frames the sampler already decoded while chaining its segments; another VAE decodes the segments once "
            f"more (each later segment's first {OVERLAP_FRAMES} frames repeat the previous one and are dropped).",
            inputs=[
                AvatarVAE.Input("vae", tooltip="From LongCat Avatar VAE Loader."),
                AvatarVideo.Input("video_latents", tooltip="From LongCat Avatar Sampler."),
                io.Boolean.Input(
                    "tiled",
                    default=False,
                    tooltip="Only used when this VAE is not the one the sampler decoded with (the sampler's frames "
                    "are reused otherwise, nothing is decoded twice): decode in overlapping 256-pixel tiles, one "
                    "tile on the GPU at a time, so the GPU memory does not grow with the resolution; slightly slower "
                    "and blended at the tile seams. Either way the video is decoded one latent frame at a time.",
                ),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="The frames at the model's native frame rate."),
                io.Float.Output(
                    display_name="fps",
                    tooltip=f"Native frame rate ({native_fps_text()}): Video Combine's source_fps.",
                ),
            ],
        )

    @classmethod
    def execute(cls, vae: NamedModel, video_latents: VideoPayload, tiled: bool) -> io.NodeOutput:
        """Reuse the sampler's frames (same VAE) or decode them once with this VAE, as float IMAGE in [0, 1]."""
        result = video_latents.result
        reuse = video_latents.vae is vae  # decoding is deterministic: the same VAE gives these very frames again
        if reuse:
            frames = result.frames
        else:
            if vae.patcher is not None:
                height, width = (side * vae.model.spatial_factor for side in result.segment_latents[0].shape[-2:])
                decode_phase(vae.model, vae.patcher, height, width)
            with cancellable(), torch.inference_mode():
                frames = decode_with_progress(vae.model, result, tiled)
        how = "the sampler's frames" if reuse else f"decoded (tiled={tiled})"
        log.info("LongCat Avatar Decode: %d frames at %d fps, %s", frames.shape[0], result.fps, how)
        return io.NodeOutput(frames.to(torch.float32) / 255.0, float(result.fps))
