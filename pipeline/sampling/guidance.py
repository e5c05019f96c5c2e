"""One guided velocity prediction: the reference's three-pass text/audio CFG, batched exactly as it batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..text.encoder import TextEmbedding
from .hooks import SamplerHooks


@dataclass
class Guidance:
    """What every DiT call of a segment shares: prompts, this segment's audio windows, scales, speaker masks."""

    text: TextEmbedding
    negative: TextEmbedding | None
    audio: torch.Tensor  # [streams, F, 5, S, A] windowed features of this segment
    text_scale: float = 1.0
    audio_scale: float = 1.0
    speaker_masks: torch.Tensor | None = None  # [K, H, W] at generation size; multi-speaker when given

    @property
    def cfg(self) -> bool:
        """CFG runs when either scale exceeds 1 (the reference's do_classifier_free_guidance)."""
        return self.text_scale > 1.0 or self.audio_scale > 1.0

    @property
    def multi(self) -> bool:
        """Multi-speaker mode: the batch axis carries the speaker streams, so the CFG branches run separately."""
        return self.speaker_masks is not None


def _call(model: nn.Module, hooks: SamplerHooks, x, t, text, mask, audio, kwargs: dict[str, Any]) -> torch.Tensor:
    """One DiT forward, after giving the caller a chance to stop."""
    hooks.check()
    return model(
        hidden_states=x, timestep=t, encoder_hidden_states=text, encoder_attention_mask=mask, audio_embs=audio, **kwargs
    )


def predict(
    model: nn.Module, x: torch.Tensor, timestep: torch.Tensor, g: Guidance, hooks: SamplerHooks, **kwargs: Any
) -> torch.Tensor:
    """Guided velocity for latents x [1, C, T, H, W]: `U + text·(C − Ut) + audio·(Ut − U)`, or C alone without CFG."""
    kwargs["ref_target_masks"] = g.speaker_masks
    pos, audio = g.text, g.audio
    if not g.cfg:
        return _call(model, hooks, x, timestep, pos.embeds, pos.mask, audio, kwargs)
    neg = g.negative
    if neg is None:
        raise ValueError("text/audio guidance above 1 needs a negative prompt embedding")
    if g.multi:
        # Speaker streams occupy the audio batch axis, so the reference runs [neg, pos] as two batch-1 calls.
        uncond_text = _call(model, hooks, x, timestep, neg.embeds, neg.mask, audio, kwargs)
        cond = _call(model, hooks, x, timestep, pos.embeds, pos.mask, audio, kwargs)
    else:
        both = _call(
            model,
            hooks,
            torch.cat([x, x]),
            torch.cat([timestep, timestep]),
            torch.cat([neg.embeds, pos.embeds]),
            torch.cat([neg.mask, pos.mask]),
            torch.cat([audio, audio]),
            kwargs,
        )
        uncond_text, cond = both.chunk(2)
    uncond = _call(model, hooks, x, timestep, neg.embeds, neg.mask, torch.zeros_like(audio), kwargs)
    return uncond + g.text_scale * (cond - uncond_text) + g.audio_scale * (uncond_text - uncond)
