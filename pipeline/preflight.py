"""What a run will do, known before it runs: the portrait's crop, the speakers' masks on the model's token grid, and
the segments and frames the audio needs. Each answer comes from the function the run itself calls."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .audio.encoder_files import PICKLE_SUFFIXES, detect_encoder_kind, find_weight_file, tensor_names
from .audio.errors import AudioEncoderError
from .audio.features import prepare_track
from .audio.multi_speaker import arrange_tracks
from .audio.speaker_masks import default_speaker_boxes, resize_speaker_masks, speaker_masks_from_boxes
from .audio.types import ENCODER_SAMPLE_RATE, version_spec
from .dit.multispeaker import empty_speaker_tokens, token_grid_masks
from .imaging import image_crop_rectangle
from .limits import SIZE_MULTIPLE
from .portrait import prepare_portrait
from .sampling.segments import frames_covering, plan_segments
from .versions import ENCODER_KIND_TO_VERSION, VERSIONS

MASK_NAMES = ("speaker 1", "speaker 2", "background")  # the DiT's mask classes, then one per extra person


@dataclass(frozen=True)
class CropPreview:
    """The portrait as the model gets it and where the speakers' masks land on its token grid."""

    source_hw: tuple[int, int]
    size_hw: tuple[int, int]  # generation size
    crop: tuple[float, float, float, float]  # (top, left, bottom, right) of the source that the crop keeps
    pixels: torch.Tensor  # [H, W, 3] in [0, 1]: the engine's crop, as Portrait Encode makes it
    grid_masks: torch.Tensor  # [K, N_h, N_w] bool: speaker 1, speaker 2, background, extra people
    boxes: list[tuple[float, float, float, float]]  # the speaker boxes used (the default halves when none given)
    empty_speakers: list[int]  # speakers (1-based) whose box covers no token: the run would refuse them

    def mask_names(self) -> list[str]:
        """One name per mask class."""
        extras = [f"extra person {i + 1}" for i in range(self.grid_masks.shape[0] - len(MASK_NAMES))]
        return [*MASK_NAMES, *extras]


def crop_preview(
    image: torch.Tensor,
    resolution: str,
    width: int,
    height: int,
    boxes: Sequence[Sequence[float]] | None = None,
    extra_boxes: Sequence[Sequence[float]] = (),
) -> CropPreview:
    """The crop Portrait Encode makes and the token masks the sampler and DiT make from these boxes."""
    portrait = prepare_portrait(image, resolution, width, height)
    src_h, src_w = int(image.shape[-3]), int(image.shape[-2])
    size = (portrait.height, portrait.width)
    masks = speaker_masks_from_boxes(src_h, src_w, boxes, extra_boxes)
    used = boxes if boxes is not None else default_speaker_boxes(src_h, src_w)
    grid = (size[0] // SIZE_MULTIPLE, size[1] // SIZE_MULTIPLE)  # VAE 8x then 2x2 patches: one token per 16 px
    grid_masks = token_grid_masks(resize_speaker_masks(masks, *size), grid)
    pixels = ((portrait.pixels[0, :, 0] + 1) / 2).clamp(0, 1).permute(1, 2, 0)
    crop = image_crop_rectangle(src_h, src_w, *size)
    return CropPreview(
        (src_h, src_w),
        size,
        crop,
        pixels,
        grid_masks,
        [tuple(map(float, b)) for b in used],
        empty_speaker_tokens(grid_masks),
    )


@dataclass(frozen=True)
class AudioPlan:
    """How long the speech is and what the sampler makes of it at one version's frame rate."""

    duration_s: float
    version: str
    fps: int
    num_segments: int
    frames: int  # frames of the finished video
    generated_frames: int  # frames the segments produce before trimming


def plan_audio(audios: Sequence[Mapping[str, Any] | None], mode: str, version: str) -> AudioPlan:
    """Duration of the speech as Audio Encode lays it out (one speaker, or two in `mode`) and the segment plan."""
    tracks = [prepare_track(a) if a is not None else None for a in audios]
    if len(tracks) == 1:
        samples = len(tracks[0]) if tracks[0] is not None else 0
    else:
        samples = len(arrange_tracks(tracks, mode)[0])
    duration = samples / ENCODER_SAMPLE_RATE
    spec = version_spec(version)
    plan = plan_segments(frames_covering(duration, spec.video_fps))
    return AudioPlan(
        duration, spec.version, spec.video_fps, plan.num_segments, plan.output_frames, plan.generated_frames
    )


def plan_audio_all_versions(audios: Sequence[Mapping[str, Any] | None], mode: str) -> list[AudioPlan]:
    """`plan_audio` at every version's frame rate (when the audio encoder, hence the version, is unknown)."""
    return [plan_audio(audios, mode, version) for version in VERSIONS]


def audio_encoder_version(path: Path) -> str:
    """The LongCat version an audio encoder (folder or file) serves: from its config.json, else its tensor names."""
    path = Path(path)
    config = path / "config.json"
    if path.is_dir() and config.is_file():
        kind = json.loads(config.read_text()).get("model_type", "")
        if kind in ENCODER_KIND_TO_VERSION:
            return ENCODER_KIND_TO_VERSION[kind]
    file = find_weight_file(path)
    if file.suffix in PICKLE_SUFFIXES:
        raise AudioEncoderError(f"{file.name} is a pickle; its kind is only known once it is loaded")
    return ENCODER_KIND_TO_VERSION[detect_encoder_kind(tensor_names(file))]
