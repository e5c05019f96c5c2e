"""Audio windows -> per-latent-frame audio tokens (`audio_proj`), including the first-frame / 8-slot regrouping."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .layers import factory

# audio_proj.norm is a plain torch LayerNorm in the reference, so it keeps torch's default eps.
AUDIO_NORM_EPS = 1e-5


def regroup_audio_windows(audio: torch.Tensor, vae_scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split windowed features [B, F, W, S, A] into the first frame [B, 1, W, S, A] and per-latent windows.

    Video frames 1..F-1 form groups of `vae_scale` (one latent frame each). Per group the first frame contributes the
    window slots up to the centre, the middle frames their centre slot, the last frame the slots from the centre:
    W//2+1 + (vae_scale-2) + W-W//2 = W+vae_scale-1 slots (8 for W=5, vae_scale=4) -> [B, F', W+vae_scale-1, S, A].
    """
    batch, frames, window = audio.shape[:3]
    if (frames - 1) % vae_scale:
        raise ValueError(f"audio_embs has {frames} video frames; expected 1 + a multiple of {vae_scale}")
    mid = window // 2
    first = audio[:, :1]
    groups = audio[:, 1:].reshape(batch, (frames - 1) // vae_scale, vae_scale, *audio.shape[2:])
    head = groups[:, :, 0, : mid + 1]
    middle = groups[:, :, 1:-1, mid].reshape(batch, groups.shape[1], vae_scale - 2, *audio.shape[3:])
    tail = groups[:, :, -1, mid:]
    return first, torch.cat([head, middle, tail], dim=2)


class AudioProjModel(nn.Module):
    """proj1 (first frame, W slots) / proj1_vf (later frames, W+vae-1 slots) -> ReLU -> proj2 -> ReLU -> proj3 -> LN."""

    def __init__(
        self,
        in_first: int,
        in_later: int,
        intermediate_dim: int,
        context_tokens: int,
        output_dim: int,
        ops: Any,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.context_tokens = context_tokens
        self.output_dim = output_dim
        self.proj1 = ops.Linear(in_first, intermediate_dim, **factory(device, dtype))
        self.proj1_vf = ops.Linear(in_later, intermediate_dim, **factory(device, dtype))
        self.proj2 = ops.Linear(intermediate_dim, intermediate_dim, **factory(device, dtype))
        self.proj3 = ops.Linear(intermediate_dim, context_tokens * output_dim, **factory(device, dtype))
        self.norm = ops.LayerNorm(output_dim, eps=AUDIO_NORM_EPS, elementwise_affine=True, **factory(device, dtype))

    def forward(self, first: torch.Tensor, later: torch.Tensor) -> torch.Tensor:
        """first [B, 1, W, S, A], later [B, F', W', S, A] -> tokens [B, 1+F', context_tokens, output_dim]."""
        batch = first.shape[0]
        e_first = torch.relu(self.proj1(first.flatten(2)))
        e_later = torch.relu(self.proj1_vf(later.flatten(2)))
        emb = torch.relu(self.proj2(torch.cat([e_first, e_later], dim=1)))
        tokens = self.proj3(emb).reshape(batch, emb.shape[1], self.context_tokens, self.output_dim)
        return self.norm(tokens)
