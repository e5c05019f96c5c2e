"""GPU check section 2: the whole engine on the device with the tiny models (bf16 and fp32), and one fp32 DiT
forward on the device against the same forward on the CPU."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from gpu_check_common import Context, log, rel_l2

from longcat_avatar.tiny_models import build_dit, build_vae
from pipeline.checkpoints.dit_loader import load_dit

FPS = 25  # v1.5's native frame rate
SEGMENT_FRAMES, OVERLAP_FRAMES = 13, 5  # short 4k+1-frame segments keep the CPU run in seconds
SECONDS = 0.8  # 20 frames: two 13-frame segments, so the continuation path (KV cache, re-encoding) runs too
SIZE = 32  # pixels per side of the tiny run
TEXT_TOKENS = 16
DEVICE_TOLERANCE = 1e-4  # fp32 on the device vs fp32 on the CPU, relative L2


def generate(ctx: Context, dit_dir: Path, vae_dir: Path, dtype: torch.dtype) -> torch.Tensor:
    """generate_video with the tiny DiT and VAE on the device in `dtype`; returns the uint8 frames."""
    from pipeline.audio.types import AudioFeatures
    from pipeline.sampling.sampler import SamplerSettings, VideoConditioning, generate_video
    from pipeline.text.encoder import TextEmbedding
    from pipeline.vae.loader import load_wan_vae
    from pipeline.vae.wan_vae import WanVAE

    model = load_dit(dit_dir, dtype=dtype, device=ctx.device).model
    vae = WanVAE(load_wan_vae(vae_dir, dtype=dtype), device=ctx.device)
    gen = torch.Generator().manual_seed(5)
    cfg, steps = model.config, int(SECONDS * FPS) + 200  # features reach past the last generated frame
    features = torch.randn(1, steps, cfg.audio_block, cfg.audio_channel, generator=gen)
    audio = AudioFeatures(features, "v1.5", FPS, 1, steps / FPS, 1, SECONDS)
    embeds = torch.randn(1, 1, TEXT_TOKENS, cfg.caption_channels, generator=gen)
    text = TextEmbedding(embeds, torch.ones(1, TEXT_TOKENS, dtype=torch.long))
    image = torch.rand(1, 3, 1, SIZE, SIZE, generator=gen) * 2 - 1
    cond = VideoConditioning(text, text, audio, SIZE, SIZE, image)
    with torch.no_grad():
        settings = SamplerSettings(
            distilled=True, seed=1, frames_per_segment=SEGMENT_FRAMES, overlap_frames=OVERLAP_FRAMES
        )
        return generate_video(model, vae, "v1.5", cond, settings).frames


def device_vs_cpu(ctx: Context, dit_dir: Path) -> float:
    """Relative L2 between one fp32 DiT forward on the device and on the CPU."""
    gen = torch.Generator().manual_seed(6)
    cpu = load_dit(dit_dir, dtype=torch.float32, device="cpu").model
    device = load_dit(dit_dir, dtype=torch.float32, device=ctx.device).model
    cfg = cpu.config
    inputs = {
        "hidden_states": torch.randn(1, 16, 5, 8, 8, generator=gen), "timestep": torch.full((1,), 500.0),
        "encoder_hidden_states": torch.randn(1, 1, TEXT_TOKENS, cfg.caption_channels, generator=gen),
        "audio_embs": torch.randn(1, 17, cfg.audio_window, cfg.audio_block, cfg.audio_channel, generator=gen),
    }  # fmt: skip
    with torch.no_grad():
        expected = cpu(**inputs)
        actual = device(**{k: v.to(ctx.device) for k, v in inputs.items()})
    return rel_l2(actual, expected)


def section_engine(ctx: Context) -> dict[str, Any]:
    """2. Tiny models through the whole sampler on the device; fp32 device == fp32 CPU within 1e-4."""
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dit_dir, vae_dir = Path(tmp) / "base_model", Path(tmp) / "vae"
        build_dit(dit_dir, seed=3)
        build_vae(vae_dir, seed=4)
        for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
            frames = generate(ctx, dit_dir, vae_dir, dtype)
            report[name] = {
                "frames": list(frames.shape),
                "dtype": str(frames.dtype),
                "std": float(frames.float().std()),
            }
            log(f"  {name}: {tuple(frames.shape)} frames")
            if frames.shape[0] != int(SECONDS * FPS) or frames.float().std() == 0:
                raise AssertionError(f"{name}: unexpected video {tuple(frames.shape)}")
        report["fp32_device_vs_cpu_rel_l2"] = error = device_vs_cpu(ctx, dit_dir)
    if not error <= DEVICE_TOLERANCE:
        raise AssertionError(f"fp32 on {ctx.device} differs from the CPU: relative L2 {error:.2e}")
    return report
