"""Plain containers that travel between the pack's nodes under the LONGCAT_* types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelHandle:
    """LONGCAT_MODEL: the loaded DiT and what the loader learned about it."""

    loaded: Any  # pipeline.checkpoints.dit_loader.LoadedDiT
    name: str  # the dropdown entry it came from

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
