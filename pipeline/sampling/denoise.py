"""The denoising loops of one segment: first segment (at2v / ai2v) and continuation (reference + KV cache).

These take explicit noise and latents so the parity tests can drive them with the reference's stored tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .guidance import Guidance, predict
from .hooks import SamplerHooks
from .schedules import Schedule, euler_step


@dataclass
class Continuation:
    """What a continuation segment conditions on (all normalised latents [1, 16, ·, h, w])."""

    denoise_cond: torch.Tensor  # clean overlap latents used while denoising (v1.0: previous latents; v1.5: fresh)
    fresh_cond: torch.Tensor  # VAE re-encoding of the overlap frames; overwrites the head of the result
    ref_latent: torch.Tensor  # [1, 16, 1, h, w]: latent frame 0 of the first segment
    ref_img_index: int = 10  # virtual RoPE time of the reference (demo default)
    mask_frame_range: int = 3  # noisy frames within ±3 of that time do not attend to the reference (demo default)


def _dit_dtype(model: nn.Module) -> torch.dtype:
    """The DiT's activation dtype (the reference casts continuation noise to it)."""
    dtype = getattr(model, "compute_dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype
    weight = next(model.parameters(), None)
    return torch.float32 if weight is None else weight.dtype


def _dit_device(model: nn.Module) -> torch.device:
    """Where the DiT computes; the latents are denoised there (the DiT moves its other inputs itself).

    A memory manager that may leave some weights on the host records the compute device as `model.device` (ComfyUI's
    ModelPatcher does on every load); otherwise it is where the weights live.
    """
    placed = getattr(model, "device", None)
    if isinstance(placed, torch.device):
        return placed
    weight = next(model.parameters(), None)
    return torch.device("cpu") if weight is None else weight.device


@torch.no_grad()
def denoise_first_segment(
    model: nn.Module,
    noise: torch.Tensor,
    schedule: Schedule,
    guidance: Guidance,
    image_latent: torch.Tensor | None = None,
    hooks: SamplerHooks | None = None,
) -> torch.Tensor:
    """at2v (no image) or ai2v (latent frame 0 = the image, timestep 0, never updated) → latents [1, 16, T, h, w]."""
    hooks = hooks or SamplerHooks()
    device = _dit_device(model)
    latents = noise.to(device, torch.float32).clone()
    first = 0
    if image_latent is not None:
        latents[:, :, :1] = image_latent.to(device, torch.float32)
        first = 1
    frames = latents.shape[2]
    for i, t in enumerate(schedule.timesteps):
        if first:
            timestep = t.expand(1, frames).clone()
            timestep[:, :first] = 0  # the clean image frame is at t = 0
            velocity = predict(model, latents, timestep, guidance, hooks, num_cond_latents=first)
        else:
            velocity = predict(model, latents, t.expand(1).clone(), guidance, hooks)
        latents[:, :, first:] = euler_step(
            latents[:, :, first:], -velocity[:, :, first:], schedule.sigmas[i], schedule.sigmas[i + 1]
        )
        hooks.step(latents)
    return latents.cpu()


@torch.no_grad()
def denoise_continuation(
    model: nn.Module,
    noise: torch.Tensor,
    schedule: Schedule,
    guidance: Guidance,
    cont: Continuation,
    hooks: SamplerHooks | None = None,
) -> torch.Tensor:
    """A continuation segment: [ref | cond] go through one KV-cache pass, the noisy frames through the loop.

    Returns [1, 16, T, h, w] = [fresh cond latents | generated frames] (the reference frame is dropped).
    """
    hooks = hooks or SamplerHooks()
    n_cond = cont.denoise_cond.shape[2]
    dtype, device = _dit_dtype(model), _dit_device(model)
    latents = noise.to(device, dtype).clone()  # the reference draws continuation noise in the DiT dtype
    latents[:, :, :n_cond] = cont.denoise_cond.to(device, dtype)
    latents = torch.cat([cont.ref_latent.to(device, torch.float32), latents.to(torch.float32)], dim=2)
    n_clean = n_cond + 1  # the reference latent counts as a conditioning latent in every DiT call
    clean, noisy = latents[:, :, :n_clean], latents[:, :, n_clean:]
    hooks.check()
    text = guidance.text.embeds
    _, kv_cache = model(
        hidden_states=clean,
        timestep=torch.zeros(1, n_clean),
        encoder_hidden_states=torch.zeros(1, 1, text.shape[-2], text.shape[-1], dtype=text.dtype),
        audio_embs=guidance.audio,
        num_cond_latents=n_clean,
        num_ref_latents=1,
        ref_img_index=cont.ref_img_index,
        return_kv=True,
        skip_crs_attn=True,
    )
    extra = {
        "num_cond_latents": n_clean,
        "num_ref_latents": 1,
        "ref_img_index": cont.ref_img_index,
        "mask_frame_range": cont.mask_frame_range,
        "kv_cache_dict": kv_cache,
    }
    for i, t in enumerate(schedule.timesteps):
        velocity = predict(model, noisy, t.expand(1, noisy.shape[2]).clone(), guidance, hooks, **extra)
        noisy = euler_step(noisy, -velocity, schedule.sigmas[i], schedule.sigmas[i + 1])
        hooks.step(noisy)
    return torch.cat([cont.fresh_cond.to(torch.float32), noisy.cpu()], dim=2)
