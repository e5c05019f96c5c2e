"""Tiny random LongCat-Avatar DiTs and inputs for unit tests (no downloads, no reference files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from pipeline.dit.config import DiTConfig
from pipeline.dit.model import LongCatAvatarDiT

# Text length and latent grid of the tiny inputs (4 x 6 tokens per frame, as in the shared vectors).
TEXT_TOKENS = 7
LATENT_HW = (8, 12)


def tiny_config(version: str = "v1.5", **overrides: Any) -> DiTConfig:
    """A 2-block, hidden-64 config with the real structural flags; v1.0 uses 12 audio layers, v1.5 five."""
    base = {
        "hidden_size": 64,
        "depth": 2,
        "num_heads": 4,
        "caption_channels": 32,
        "adaln_tembed_dim": 32,
        "intermediate_dim": 32,
        "output_dim": 48,
        "context_tokens": 4,
        "text_tokens_zero_pad": True,
        "audio_block": 12 if version == "v1.0" else 5,
        "audio_channel": 32,
    }
    return DiTConfig.from_dict({**base, **overrides})


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Weights ~ N(0, 1/fan_in), vectors ~ N(0, 0.01^2), norm weights ~ 1 + N(0, 0.04^2) (like the vector sets)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if param.dim() >= 2:
                param.copy_(noise / param[0].numel() ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                param.copy_(1 + 0.04 * noise)
            else:
                param.copy_(0.01 * noise)
    return model


def tiny_model(
    version: str = "v1.5", seed: int = 0, dtype: torch.dtype = torch.float32, **overrides: Any
) -> LongCatAvatarDiT:
    """A randomised tiny model in eval mode."""
    model = randomize(LongCatAvatarDiT(tiny_config(version, **overrides)), seed).eval()
    return model.to(dtype)


def tiny_inputs(
    config: DiTConfig,
    frames: int,
    batch: int = 1,
    audio_batch: int | None = None,
    seed: int = 1,
    video_frames: int | None = None,
) -> dict[str, torch.Tensor]:
    """hidden_states [B,16,T,8,12], timestep [B,T], text [B,1,7,C], mask [B,7], audio [B_a, 4T-3, 5, S, A]."""
    gen = torch.Generator().manual_seed(seed)
    video = video_frames if video_frames is not None else 4 * frames - 3
    mask = torch.ones(batch, TEXT_TOKENS, dtype=torch.int64)
    mask[:, TEXT_TOKENS - 2 :] = 0
    return {
        "hidden_states": torch.randn(batch, config.in_channels, frames, *LATENT_HW, generator=gen),
        # Multiples of 8 in [0, 1000): exact in bf16/fp16, so dtype comparisons do not hinge on timestep rounding.
        "timestep": torch.randint(0, 125, (batch, frames), generator=gen).float() * 8,
        "encoder_hidden_states": torch.randn(batch, 1, TEXT_TOKENS, config.caption_channels, generator=gen),
        "encoder_attention_mask": mask,
        "audio_embs": torch.randn(
            audio_batch or batch, video, config.audio_window, config.audio_block, config.audio_channel, generator=gen
        ),
    }


def rel_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||a - e|| / ||e|| in float64."""
    a, e = actual.double(), expected.double()
    return ((a - e).norm() / e.norm()).item()


def write_random_lora(path: Path, shapes: dict[str, tuple[int, ...]], seed: int = 0, scale: float = 0.02) -> Path:
    """A LoRA file with exactly these tensor names and shapes: random downs and ups, alpha_scale 0.5 (alpha 64/128)."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {
        name: torch.tensor(0.5) if not shape else torch.randn(shape, generator=gen) * scale
        for name, shape in sorted(shapes.items())
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path
