"""Activation memory of every phase of a run, from the shapes: what the nodes ask ComfyUI to free before each phase.

`memory_required` is the phase's activation peak computed at full speed (no chunking, KV cache on the device,
untiled decode); `minimum_memory_required` the peak with the tightest options. ComfyUI adds the weights itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dit.config import DiTConfig
from ..sampling.noise import VAE_SPATIAL
from ..sampling.segments import OVERLAP_FRAMES, SEGMENT_FRAMES, VAE_TEMPORAL, latent_frames
from ..vae.tiling import Tiling
from .activations import DiTCall, forward_bytes, options_for_budget
from .encoders import umt5_encode_bytes, wav2vec2_encode_bytes, whisper_encode_bytes
from .options import ActivationOptions
from .phases import PHASES
from .vae import decode_chunk_bytes, encode_chunk_bytes

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
CFG_BATCH = 2  # single-speaker CFG batches the negative and positive prompt passes into one DiT call
CFG_SAMPLES = 3  # CFG runs three samples per step: negative, positive and the audio-free pass
PHASE_MODEL = dict(zip(PHASES, ("text", "audio", "vae", "dit", "dit", "vae"), strict=True))  # whose config it needs


@dataclass(frozen=True)
class ModelConfigs:
    """The configs of the four models of one version (a caller that runs only some phases may omit the others)."""

    dit: DiTConfig | None = None
    vae: dict[str, Any] | None = None
    text: dict[str, Any] | None = None  # transformers UMT5Config keys
    audio: dict[str, Any] | None = None  # transformers WhisperConfig or Wav2Vec2Config keys (with "model_type")
    text_tokens: int = 0  # the DiT's model_max_length: every prompt is padded to it

    def covers(self, phase: str) -> bool:
        """True when the config `phase` is estimated from is present."""
        return getattr(self, PHASE_MODEL[phase]) is not None


def shipped_configs(version: str = "1.5") -> ModelConfigs:
    """The published configs copied into pipeline/memory/configs (v1.5 only: v1.0's are not shipped)."""
    if version.lstrip("v") != "1.5":
        raise ValueError(f"estimates cover LongCat-Video-Avatar 1.5 (its configs ship with the pack), not {version}")

    def read(name: str) -> dict[str, Any]:
        return json.loads((CONFIG_DIR / name).read_text())

    raw = read("avatar-1.5-dit.json")
    vae, text, audio = read("wan2.1-vae.json"), read("umt5-xxl-encoder.json"), read("whisper-large-v3.json")
    return ModelConfigs(DiTConfig.from_dict(raw), vae, text, audio, int(raw["model_max_length"]))


@dataclass(frozen=True)
class VideoShape:
    """What a run's activations depend on: frame size, segment layout, guidance, speakers, activation dtype."""

    height: int
    width: int
    text_tokens: int  # umT5 tokens of the prompt (padded to the model's maximum)
    frames_per_segment: int = SEGMENT_FRAMES
    overlap_frames: int = OVERLAP_FRAMES
    guidance: bool = False  # text/audio CFG (False: distilled, one pass per step)
    speakers: int = 1
    act_bytes: int = 2  # bf16 / fp16 activations
    audio_samples: int = 0  # 16 kHz samples a whole-clip audio encoder (wav2vec2, v1.0) runs over at once

    @property
    def dit_batch(self) -> int:
        """Samples per DiT call: CFG batches two for one speaker; with speakers, each pass is its own call."""
        return CFG_BATCH if self.guidance and self.speakers == 1 else 1

    @property
    def samples_per_step(self) -> int:
        """DiT samples per denoising step."""
        return CFG_SAMPLES if self.guidance else 1


def frame_tokens(cfg: DiTConfig, shape: VideoShape) -> int:
    """DiT tokens per latent frame: the latent grid over the 2x2 patches (odd sides padded)."""
    rows = -(-shape.height // VAE_SPATIAL // cfg.patch_size[1])
    cols = -(-shape.width // VAE_SPATIAL // cfg.patch_size[2])
    return rows * cols


def segment_calls(cfg: DiTConfig, shape: VideoShape) -> dict[str, list[tuple[DiTCall, bool]]]:
    """The DiT forwards of each segment phase as (call, collects_kv)."""
    ft, frames = frame_tokens(cfg, shape), latent_frames(shape.frames_per_segment)
    clean = latent_frames(shape.overlap_frames) + 1  # overlap latents and the reference latent
    multi = shape.speakers > 1
    common = {"frame_tokens": ft, "text_tokens": shape.text_tokens, "act_bytes": shape.act_bytes}
    first = DiTCall(shape.dit_batch, frames * ft, map_queries=(frames - 1) * ft * multi, **common)
    noisy = (frames - clean + 1) * ft  # the reference is not part of the segment's frames
    cache_pass = DiTCall(1, clean * ft, **{**common, "text_tokens": 0})
    step = DiTCall(shape.dit_batch, noisy, cached_tokens=clean * ft, map_queries=noisy * multi, **common)
    return {"first_segment": [(first, False)], "continuation_segment": [(cache_pass, True), (step, False)]}


def dit_phase_bytes(cfg: DiTConfig, shape: VideoShape, phase: str, options: ActivationOptions) -> int:
    """Peak activations of a segment phase with the given options."""
    return max(forward_bytes(cfg, call, options, collects) for call, collects in segment_calls(cfg, shape)[phase])


def tightest_options(cfg: DiTConfig, shape: VideoShape) -> ActivationOptions:
    """The options with the smallest peak: chunks down to the unchunkable floor, KV cache on the host."""
    calls = [c for calls in segment_calls(cfg, shape).values() for c in calls]
    return options_for_budget(cfg, calls, 0)


def decode_bytes(configs: ModelConfigs, shape: VideoShape, tiled: bool, tiling: Tiling | None = None) -> int:
    """Streamed decode of one latent frame: over the whole frame, or over one tile."""
    tiling = tiling or Tiling()
    height, width = (
        (min(shape.height, tiling.tile_px), min(shape.width, tiling.tile_px))
        if tiled
        else (
            shape.height,
            shape.width,
        )
    )
    return decode_chunk_bytes(configs.vae, height, width, shape.act_bytes, VAE_TEMPORAL)


def phase_bytes(configs: ModelConfigs, shape: VideoShape, phase: str, tight: bool) -> int:
    """Activation peak of `phase`: at full speed, or with the tightest options (`tight`)."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; one of {PHASES}")
    if phase == "text_encode":
        return umt5_encode_bytes(configs.text, shape.text_tokens, shape.act_bytes)
    if phase == "audio_encode":
        if configs.audio.get("model_type") == "wav2vec2":
            return wav2vec2_encode_bytes(configs.audio, shape.audio_samples, shape.act_bytes)
        return whisper_encode_bytes(configs.audio, shape.act_bytes)
    if phase == "portrait_encode":
        return encode_chunk_bytes(configs.vae, shape.height, shape.width, shape.act_bytes, 1)
    if phase == "decode":
        return decode_bytes(configs, shape, tiled=tight)
    options = tightest_options(configs.dit, shape) if tight else ActivationOptions()
    return dit_phase_bytes(configs.dit, shape, phase, options)


def memory_required(configs: ModelConfigs, shape: VideoShape, phase: str) -> int:
    """Bytes of activations `phase` needs beside its weights to run at full speed."""
    return phase_bytes(configs, shape, phase, tight=False)


def minimum_memory_required(configs: ModelConfigs, shape: VideoShape, phase: str) -> int:
    """Bytes of activations `phase` needs at least (chunked, KV cache on the host, tiled decode)."""
    return phase_bytes(configs, shape, phase, tight=True)
