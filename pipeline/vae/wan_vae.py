"""The VAE as the sampler uses it: pixels ↔ normalised latents, encoding by the posterior mode, optional tiling."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKLWan

from .normalization import denormalize_latents, normalize_latents
from .pixels import frames_to_pixels, pixels_to_frames


@dataclass(frozen=True)
class Tiling:
    """Spatial tile size and stride in pixels for tiled decoding (diffusers' defaults: 256 and 192)."""

    tile_px: int = 256  # diffusers AutoencoderKLWan default tile: bounded activations, no visible seams
    stride_px: int = 192  # 64 px of overlap are blended between neighbouring tiles


class WanVAE:
    """A loaded `AutoencoderKLWan` with the latent normalisation of its config; all outputs are float32 on CPU."""

    def __init__(self, model: AutoencoderKLWan, device: torch.device | str = "cpu", tiling: Tiling | None = None):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.dtype = next(model.parameters()).dtype
        self.tiling = tiling or Tiling()
        self.latents_mean = tuple(float(x) for x in model.config.latents_mean)
        self.latents_std = tuple(float(x) for x in model.config.latents_std)
        self.temporal_factor = int(getattr(model.config, "scale_factor_temporal", 4) or 4)  # Wan 2.1: 4 frames/latent
        self.spatial_factor = int(getattr(model.config, "scale_factor_spatial", 8) or 8)  # Wan 2.1: 8 px/latent

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, F, H, W] in [−1, 1] → normalised latents [B, 16, (F−1)/4+1, H/8, W/8] (posterior mode)."""
        posterior = self.model.encode(pixels.to(self.device, self.dtype)).latent_dist
        return normalize_latents(posterior.mode().float().cpu(), self.latents_mean, self.latents_std)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        """Normalised latents [B, 16, T, h, w] → pixels [B, 3, 4(T−1)+1, 8h, 8w] in [−1, 1]."""
        raw = denormalize_latents(latents.float(), self.latents_mean, self.latents_std)
        self._set_tiling(tiled)
        try:
            return self.model.decode(raw.to(self.device, self.dtype)).sample.float().cpu()
        finally:
            self._set_tiling(False)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [F, H, W, 3] → normalised latents [1, 16, T, h, w]."""
        return self.encode(frames_to_pixels(frames))

    def decode_frames(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        """Normalised latents [1, 16, T, h, w] → uint8 frames [F, H, W, 3].

        Tiled: frames larger than a tile go through diffusers' spatial tiles; otherwise the causal decoder is run
        one latent frame at a time and each chunk is turned into uint8 at once, so no float32 copy of the whole
        segment (nor diffusers' growing concatenation of it) is ever held.
        """
        too_big = max(latents.shape[-2:]) * self.spatial_factor > self.tiling.tile_px
        if not tiled or too_big or not self._can_stream():
            return pixels_to_frames(self.decode(latents, tiled=tiled))
        return torch.cat(list(self._stream_frames(latents)))

    def _can_stream(self) -> bool:
        """True when this diffusers version exposes the causal decoder cache the streaming path drives."""
        model = self.model
        needed = ("clear_cache", "post_quant_conv", "decoder")
        return all(hasattr(model, n) for n in needed) and getattr(model.config, "patch_size", None) is None

    @torch.no_grad()
    def _stream_frames(self, latents: torch.Tensor):
        """Yield uint8 frames per latent frame, exactly as diffusers' `_decode` computes them (then clamped)."""
        raw = denormalize_latents(latents.float(), self.latents_mean, self.latents_std)
        model = self.model
        model.clear_cache()
        try:
            x = model.post_quant_conv(raw.to(self.device, self.dtype))
            for i in range(x.shape[2]):
                model._conv_idx = [0]
                out = model.decoder(
                    x[:, :, i : i + 1], feat_cache=model._feat_map, feat_idx=model._conv_idx, first_chunk=i == 0
                )
                yield pixels_to_frames(out.clamp(-1.0, 1.0).float().cpu())
        finally:
            model.clear_cache()

    def _set_tiling(self, tiled: bool) -> None:
        """Switch diffusers' spatial tiling on with our tile sizes, or off."""
        if tiled:
            t = self.tiling
            self.model.enable_tiling(t.tile_px, t.tile_px, t.stride_px, t.stride_px)
        else:
            self.model.use_tiling = False
