"""The pack's four models under ComfyUI's memory manager: how each loader builds and wraps its model, and what each
node phase asks `load_models_gpu` for (the estimator's figures for the run's shapes)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import comfy.model_management as mm
import torch
from comfy.model_patcher import ModelPatcher

from ..pipeline.audio.encoders import AudioEncoder, load_audio_encoder
from ..pipeline.audio.types import ENCODER_SAMPLE_RATE
from ..pipeline.checkpoints.dit_loader import LoadedDiT, load_dit
from ..pipeline.memory import phases
from ..pipeline.memory.estimate import ModelConfigs, VideoShape
from ..pipeline.memory.plan import MemoryPlan, plan_memory
from ..pipeline.memory.weights import model_weights
from ..pipeline.text.encoder import CachedTextEncoder
from ..pipeline.text.umt5_loader import LoadedTextEncoder, load_text_encoder
from ..pipeline.vae.loader import load_wan_vae
from ..pipeline.vae.wan_vae import WanVAE
from .comfy_ops import move_lora_to_patcher, operations
from .memory import Holder, adopt_comfy_ops, config_dict, foreign_ops, load_for_phase, patcher_for


def load_managed_dit(path: Path, compute_dtype: torch.dtype, **options: Any) -> tuple[LoadedDiT, ModelPatcher]:
    """The DiT built on ComfyUI's offload device from ComfyUI's operations, inside a stock ModelPatcher that owns
    its LoRA patches."""
    load_device, offload = mm.get_torch_device(), mm.unet_offload_device()
    ops = operations(compute_dtype, compute_dtype, load_device)
    loaded = load_dit(path, dtype=compute_dtype, device=offload, operations=ops, **options)
    patcher = patcher_for(loaded.model, offload, load_device)
    move_lora_to_patcher(patcher)
    return loaded, patcher


def load_managed_vae(path: Path, compute_dtype: torch.dtype) -> tuple[WanVAE, ModelPatcher]:
    """The Wan VAE with ComfyUI layers on ComfyUI's VAE offload device, computing on ComfyUI's VAE device."""
    model = load_wan_vae(path, dtype=compute_dtype)
    adopt_comfy_ops(model, foreign_ops(compute_dtype))
    offload = mm.vae_offload_device()
    patcher = patcher_for(Holder(model.to(offload)), offload, mm.vae_device())
    return WanVAE(model, device=patcher.load_device, place=False), patcher


def audio_encoder_offload_device() -> torch.device:
    """Where audio encoders wait between runs: the text-encoder offload device (ComfyUI's audio encoders use it)."""
    return mm.text_encoder_offload_device()


def manage_audio_encoder(encoder: AudioEncoder) -> ModelPatcher:
    """Give an audio encoder built on the offload device ComfyUI layers and the ModelPatcher that places it."""
    adopt_comfy_ops(encoder.model, foreign_ops(encoder.dtype))
    return patcher_for(Holder(encoder.model), audio_encoder_offload_device(), mm.text_encoder_device())


def load_managed_audio_encoder(path: Path, compute_dtype: torch.dtype) -> tuple[AudioEncoder, ModelPatcher]:
    """wav2vec2 / Whisper from a file, on the audio-encoder offload device, under ComfyUI's memory manager."""
    encoder = load_audio_encoder(path, device=audio_encoder_offload_device(), dtype=compute_dtype)
    return encoder, manage_audio_encoder(encoder)


def audio_encode_phase(encoder: AudioEncoder, patcher: ModelPatcher, tracks: list[dict[str, Any] | None]) -> None:
    """Load the audio encoder for its phase. Whole: Whisper is small and wav2vec2's weight-normed positional conv
    keeps its bias in a module ModelPatcher never offloads. The tracks' summed length bounds a whole-clip encoder's
    input in both two-speaker modes."""
    seconds = sum(t["waveform"].shape[-1] / t["sample_rate"] for t in tracks if t is not None)
    shape = VideoShape(0, 0, 0, act_bytes=encoder.dtype.itemsize, audio_samples=int(seconds * ENCODER_SAMPLE_RATE))
    configs = ModelConfigs(audio=config_dict(encoder.model.config))
    load_for_phase([patcher], configs, shape, phases.AUDIO_ENCODE, force_full_load=True)


class TextEncoderMemory:
    """The text encoder's `prepare` callback: the loaded umT5 in a ModelPatcher, loaded for each prompt encoded."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.patcher: ModelPatcher | None = None

    def __call__(self, encoder: LoadedTextEncoder, tokens: int) -> None:
        """Wrap the encoder (once) and load it with the estimator's figures for `tokens` tokens."""
        if self.patcher is None or self.patcher.model.model is not encoder.model:
            self.patcher = patcher_for(
                Holder(encoder.model), mm.text_encoder_offload_device(), mm.text_encoder_device()
            )
        shape = VideoShape(0, 0, tokens, act_bytes=self.dtype.itemsize)
        load_for_phase([self.patcher], ModelConfigs(text=config_dict(encoder.model.config)), shape, phases.TEXT_ENCODE)


def load_text_managed(source: Path, *, dtype: torch.dtype, tokenizer_dir: Path | None) -> LoadedTextEncoder:
    """umT5 on the text-encoder offload device: fp8 Linears from ComfyUI's operations (kept fp8), ComfyUI layers
    everywhere else."""
    ops = operations(dtype, dtype, mm.text_encoder_device())
    loaded = load_text_encoder(source, dtype=dtype, tokenizer_dir=tokenizer_dir, operations=ops)
    adopt_comfy_ops(loaded.model, foreign_ops(dtype))
    loaded.model.to(mm.text_encoder_offload_device())
    return loaded


def managed_text_encoder(source: Path, cache_dir: str, dtype: torch.dtype, tokenizer: Path | None) -> CachedTextEncoder:
    """A caching umT5 that ComfyUI loads onto its text-encoder device only for prompts not in the cache."""
    return CachedTextEncoder(
        source,
        cache_dir,
        dtype=dtype,
        tokenizer_dir=tokenizer,
        device=str(mm.text_encoder_device()),
        loader=load_text_managed,
        prepare=TextEncoderMemory(dtype),
    )


def portrait_encode_phase(vae: WanVAE, patcher: ModelPatcher, height: int, width: int) -> None:
    """Load the VAE for encoding one portrait frame."""
    configs = ModelConfigs(vae=config_dict(vae.model.config))
    load_for_phase(
        [patcher], configs, VideoShape(height, width, 0, act_bytes=vae.dtype.itemsize), phases.PORTRAIT_ENCODE
    )


def decode_phase(vae: WanVAE, patcher: ModelPatcher, height: int, width: int) -> None:
    """Load the VAE for decoding segments of height x width."""
    configs = ModelConfigs(vae=config_dict(vae.model.config))
    load_for_phase([patcher], configs, VideoShape(height, width, 0, act_bytes=vae.dtype.itemsize), phases.DECODE)


class SamplerMemory:
    """The sampler's run under ComfyUI: its shapes, its memory plan, and the engine's `prepare(phase)` callback."""

    def __init__(
        self, dit: LoadedDiT, dit_patcher: ModelPatcher, vae: WanVAE, vae_patcher: ModelPatcher, shape: VideoShape
    ):
        self.dit_patcher, self.vae, self.vae_patcher = dit_patcher, vae, vae_patcher
        self.configs = ModelConfigs(dit=dit.config, vae=config_dict(vae.model.config))
        self.shape = replace(shape, act_bytes=dit.model.compute_dtype.itemsize)
        self.decode_shape = replace(shape, act_bytes=vae.dtype.itemsize)
        device = dit_patcher.load_device
        vram = None if device.type == "cpu" else int(mm.get_total_memory(device))
        self.plan: MemoryPlan = plan_memory(
            self.configs, self.shape, dit.format, vram, lora_bytes(dit_patcher), model_weights(dit.model)
        )

    def __call__(self, phase: str) -> None:
        """Load the DiT and the VAE (continuations re-encode frames) for a segment, the VAE alone for a decode."""
        if phase == phases.DECODE:
            load_for_phase([self.vae_patcher], self.configs, self.decode_shape, phase)
        else:
            load_for_phase([self.dit_patcher, self.vae_patcher], self.configs, self.shape, phase)


def lora_bytes(patcher: ModelPatcher) -> int:
    """Bytes of the LoRA tensors the patcher holds (ComfyUI patches, and the engine's patches as weight wrappers)."""
    adapters = [entry[1] for patches in patcher.patches.values() for entry in patches]
    tensors = [t for a in adapters for t in getattr(a, "weights", ()) if isinstance(t, torch.Tensor)]
    wrappers = [w for found in patcher.weight_wrapper_patches.values() for w in found]
    tensors += [t for w in wrappers for t in (w.down, *w.ups)]
    return sum(t.numel() * t.element_size() for t in tensors)
