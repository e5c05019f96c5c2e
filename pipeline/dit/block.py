"""One LongCat-Avatar single-stream block: modulated self-attn, text cross-attn, gated audio cross-attn, SwiGLU."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..memory.options import ActivationOptions
from .attention import AudioCrossAttention, FrameLayout, SelfAttention, SpeakerRouting, TextCrossAttention
from .config import DiTConfig
from .fp32 import gated_add, layer_norm_fp32, modulate_fp32
from .layers import NORM_EPS, FeedForwardSwiGLU, ada_ln, factory, modulation


@dataclass
class BlockContext:
    """Everything a block needs besides the hidden states; shared by all blocks of one forward call."""

    layout: FrameLayout
    t: torch.Tensor  # [B, T, D] float32 per-frame timestep embeddings
    text: torch.Tensor  # [B, L, C] projected caption
    text_mask: torch.Tensor | None  # [B, L] bool keep-mask, None = attend to every text token
    audio: torch.Tensor  # [(B*T), M, A] single speaker, [T, P*M, A] multi speaker
    skip_crs_attn: bool = False
    masks: torch.Tensor | None = None  # [K, N_h*N_w] token masks (multi speaker)
    human_num: int | None = None
    cached: bool = False  # True when the clean frames live in the KV cache (x holds noisy frames only)
    return_kv: bool = False  # collect every block's pre-RoPE (k, v)
    options: ActivationOptions = field(default_factory=ActivationOptions)  # chunk sizes of this forward


class LongCatAvatarBlock(nn.Module):
    """Block `blocks.{i}` with the official state-dict names."""

    def __init__(self, cfg: DiTConfig, ops: Any, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dim, t_dim = cfg.hidden_size, cfg.adaln_tembed_dim
        self.class_range, self.class_interval = cfg.class_range, cfg.class_interval
        self.adaLN_modulation = ada_ln(t_dim, 6 * dim, ops, device, dtype)
        self.audio_adaLN_modulation = ada_ln(t_dim, 3 * dim, ops, device, dtype)
        affine = {"eps": NORM_EPS, "elementwise_affine": True, **factory(device, dtype)}
        self.pre_crs_attn_norm = ops.LayerNorm(dim, **affine)
        self.pre_video_crs_attn_norm = ops.LayerNorm(dim, **affine)
        self.pre_audio_crs_attn_norm = ops.LayerNorm(cfg.output_dim, **affine) if cfg.audio_prenorm else None
        self.attn = SelfAttention(dim, cfg.num_heads, ops, device, dtype)
        self.cross_attn = TextCrossAttention(dim, cfg.num_heads, ops, device, dtype)
        self.audio_cross_attn = AudioCrossAttention(dim, cfg.output_dim, cfg.num_heads, ops, device, dtype)
        self.ffn = FeedForwardSwiGLU(dim, cfg.ffn_dim, ops, device, dtype)

    def _audio(self, x: torch.Tensor, ctx: BlockContext, ref_map: torch.Tensor | None) -> torch.Tensor:
        """Gated, output-modulated audio cross-attention on the noisy frames; zeros for the clean ones."""
        layout = ctx.layout
        ncl = 0 if ctx.cached else layout.num_cond_latents
        frames = layout.frames - ncl
        batch, tokens, channels = x.shape
        skip = ncl * layout.frame_tokens
        shift, scale, gate = modulation(self.audio_adaLN_modulation, ctx.t[:, ncl:], 3)
        audio = ctx.audio
        if self.pre_audio_crs_attn_norm is not None:
            audio = layer_norm_fp32(audio, self.pre_audio_crs_attn_norm, NORM_EPS).to(audio.dtype)
        audio = audio.view(-1, layout.frames, *audio.shape[1:])[:, ncl:].flatten(0, 1)
        normed = layer_norm_fp32(x, self.pre_video_crs_attn_norm, NORM_EPS).to(x.dtype)[:, skip:]
        # Routing by 1D RoPE: always in the cached path, otherwise only with 2+ speaker streams (reference branches).
        routing = None
        if ref_map is not None and (ctx.cached or (ctx.human_num or 0) >= 2):
            routing = SpeakerRouting(ref_map, ctx.human_num, self.class_range, self.class_interval)
        out = self.audio_cross_attn(normed, audio, frames, routing)
        out = modulate_fp32(out.view(batch, frames, -1, channels), shift, scale, NORM_EPS)
        update = (gate * out.float()).view(batch, -1, channels)
        if skip:
            update = torch.cat([update.new_zeros(batch, skip, channels), update], dim=1)
        return (x.float() + update).to(x.dtype)

    def forward(
        self, x: torch.Tensor, ctx: BlockContext, kv_cache: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """x [B, N, C] -> (x, pre-RoPE (k, v) of this block when requested)."""
        batch, tokens, channels = x.shape
        frames = ctx.layout.frames
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation(self.adaLN_modulation, ctx.t, 6)
        xm = modulate_fp32(x.view(batch, frames, -1, channels), shift_msa, scale_msa, NORM_EPS).view_as(x)
        attn_out, new_kv, ref_map = self.attn(
            xm, ctx.layout, kv_cache, ctx.return_kv and kv_cache is None, ctx.masks, ctx.options.map_chunk_queries
        )
        x = gated_add(x, gate_msa, attn_out)
        if not ctx.skip_crs_attn:
            skip = 0 if ctx.cached else ctx.layout.num_cond_latents * ctx.layout.frame_tokens
            normed = layer_norm_fp32(x, self.pre_crs_attn_norm, NORM_EPS).to(x.dtype)
            x = x + self.cross_attn(normed, ctx.text, ctx.text_mask, skip)
            x = self._audio(x, ctx, ref_map)
        xm = modulate_fp32(x.view(batch, frames, -1, channels), shift_mlp, scale_mlp, NORM_EPS).view_as(x)
        x = gated_add(x, gate_mlp, self.ffn(xm, ctx.options.ffn_chunk_tokens))
        return x, new_kv
