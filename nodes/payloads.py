"""Plain containers that travel between the pack's nodes under the LONGCAT_* types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..pipeline.audio.speaker_masks import speaker_masks_from_boxes, speaker_masks_from_tensors


@dataclass
class ModelHandle:
    """LONGCAT_MODEL: the loaded DiT and what the loader learned about it."""

    loaded: Any  # pipeline.checkpoints.dit_loader.LoadedDiT
    name: str  # the dropdown entry it came from
    patcher: Any = None  # the comfy.model_patcher.ModelPatcher that places the DiT (None: it stays where it is)

    @property
    def version(self) -> str:
        """ "v1.0" or "v1.5"."""
        return self.loaded.version

    @property
    def has_lora(self) -> bool:
        """True when a LoRA (for LongCat: the v1.5 DMD distillation LoRA) is applied."""
        return self.loaded.lora is not None

    def describe(self) -> str:
        """One line for logs and the sampler's report."""
        lora = f", LoRA {self.loaded.lora.path} x{self.loaded.lora.strength:g}" if self.has_lora else ""
        speakers = "multi-speaker" if self.loaded.multi_speaker else "single-speaker"
        return f"{self.name} ({self.version}, {self.loaded.format}, {speakers}{lora})"


@dataclass
class AudioEncoderHandle:
    """LONGCAT_AUDIO_ENCODER: a wav2vec2 (v1.0) or Whisper (v1.5) encoder."""

    encoder: Any  # pipeline.audio.encoders.AudioEncoder
    name: str
    patcher: Any = None  # its ModelPatcher (None: an encoder made elsewhere stays where it is)

    @property
    def version(self) -> str:
        """The LongCat version the encoder serves."""
        return self.encoder.version


@dataclass
class NamedModel:
    """LONGCAT_VAE / LONGCAT_TEXT_ENCODER: an engine object and the dropdown entry it came from."""

    model: Any
    name: str
    extra: dict[str, Any] = field(default_factory=dict)
    patcher: Any = None  # the VAE's ModelPatcher (the text encoder makes its own on first use)


@dataclass
class SpeakerLayout:
    """Where the speakers are in the portrait; turned into masks once the portrait's size is known (sampler)."""

    boxes: list[list[float]] | None = None  # [human1, human2] as [y_min, x_min, y_max, x_max]; None = halves
    masks: list[Any] | None = None  # [human1, human2] ComfyUI MASKs, used instead of boxes when given
    extra_boxes: list[list[float]] = field(default_factory=list)  # silent extra people

    def build_masks(self, height: int, width: int) -> Any:
        """Masks [3 + extras, height, width] in source-image pixels (human1, human2, background, others)."""
        if self.masks is not None:
            masks = speaker_masks_from_tensors(self.masks)
            if tuple(masks.shape[-2:]) != (height, width):
                raise ValueError(
                    f"the speaker MASKs are {masks.shape[-1]}x{masks.shape[-2]} but the portrait is {width}x{height}; "
                    "draw them on the same image"
                )
            if self.extra_boxes:
                extras = speaker_masks_from_boxes(height, width, None, self.extra_boxes)[3:]
                masks = torch.cat([masks, extras])
            return masks
        return speaker_masks_from_boxes(height, width, self.boxes, self.extra_boxes)


@dataclass
class AudioEmbedsPayload:
    """LONGCAT_AUDIO_EMBEDS: the audio features, the speakers' layout and the soundtrack for the video."""

    features: Any  # pipeline.audio.types.AudioFeatures
    layout: SpeakerLayout | None  # None for one speaker
    soundtrack: dict[str, Any]  # ComfyUI AUDIO: the original (single) or mixed (two speakers) audio
