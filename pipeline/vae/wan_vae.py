"""The VAE as the sampler uses it: pixels ↔ normalised latents, encoding by the posterior mode, streamed decoding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from .normalization import denormalize_latents, normalize_latents
from .pixels import frames_to_pixels, pixels_to_frames
from .tiling import Tiling

if TYPE_CHECKING:  # only annotations here: diffusers' model stack is imported when a VAE is loaded
    from diffusers import AutoencoderKLWan

__all__ = ["Tiling", "WanVAE"]


class WanVAE:
    """A loaded `AutoencoderKLWan` with the latent normalisation of its config; all outputs are float32 on CPU."""

    def __init__(
        self,
        model: AutoencoderKLWan,
        device: torch.device | str = "cpu",
        tiling: Tiling | None = None,
        place: bool = True,
    ):
        """`device` is where it computes; `place=False` leaves the weights where a memory manager puts them."""
        self.model = (model.to(device) if place else model).eval()
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
        """Normalised latents [1, 16, T, h, w] → uint8 frames [F, H, W, 3], written into one host buffer.

        The causal decoder runs one latent frame at a time and each decoded chunk leaves the device as uint8 at
        once, so the device peak does not grow with the number of frames (same frames as `decode`). Tiled, when the
        frame is larger than a tile: diffusers' spatial tiles, decoded one tile at a time with each tile's chunks
        moved to the host and blended there one row of tiles at a time, so the device peak is that of one tile
        whatever the resolution (same frames as `decode(tiled=True)`).
        """
        if not self._can_stream():
            return pixels_to_frames(self.decode(latents, tiled=tiled))
        raw = denormalize_latents(latents.float(), self.latents_mean, self.latents_std).to(self.device, self.dtype)
        frames = 1 + self.temporal_factor * (raw.shape[2] - 1)
        height, width = (side * self.spatial_factor for side in raw.shape[-2:])
        out = torch.empty((frames, height, width, 3), dtype=torch.uint8)
        with torch.no_grad():
            if tiled and max(height, width) > self.tiling.tile_px:
                self._decode_tile_rows(raw, out)
            else:
                start = 0
                for chunk in self._decoded_chunks(raw, per_frame_conv=False):
                    part = pixels_to_frames(chunk.clamp(-1.0, 1.0).cpu())
                    out[start : start + part.shape[0]] = part
                    start += part.shape[0]
        return out

    def _can_stream(self) -> bool:
        """True when this diffusers version exposes the causal decoder cache the streaming path drives."""
        model = self.model
        needed = ("clear_cache", "post_quant_conv", "decoder", "blend_v", "blend_h")
        return all(hasattr(model, n) for n in needed) and getattr(model.config, "patch_size", None) is None

    def _decoded_chunks(self, raw: torch.Tensor, per_frame_conv: bool) -> Iterator[torch.Tensor]:
        """Yield the decoder's output per latent frame (device, model dtype), as diffusers' `_decode` computes it.

        `per_frame_conv` applies post_quant_conv per latent frame, as diffusers' `tiled_decode` does per tile.
        """
        model = self.model
        model.clear_cache()
        try:
            x = raw if per_frame_conv else model.post_quant_conv(raw)
            for i in range(x.shape[2]):
                model._conv_idx = [0]
                z = model.post_quant_conv(x[:, :, i : i + 1]) if per_frame_conv else x[:, :, i : i + 1]
                yield model.decoder(z, feat_cache=model._feat_map, feat_idx=model._conv_idx, first_chunk=i == 0)
        finally:
            model.clear_cache()

    def _decode_tile_rows(self, raw: torch.Tensor, out: torch.Tensor) -> None:
        """diffusers' `tiled_decode`, one row of tiles at a time: tiles on the host, blended as diffusers blends."""
        model, tiling = self.model, self.tiling
        tile, stride = tiling.tile_px // self.spatial_factor, tiling.stride_px // self.spatial_factor
        blend = tiling.tile_px - tiling.stride_px
        height, width = out.shape[1:3]
        above: list[torch.Tensor] | None = None
        top = 0
        for i in range(0, raw.shape[-2], stride):
            row = [
                torch.cat([c.cpu() for c in self._decoded_chunks(raw[..., i : i + tile, j : j + tile], True)], 2)
                for j in range(0, raw.shape[-1], stride)
            ]
            kept = []
            for j, current in enumerate(row):  # blend_v / blend_h modify the tile in place, as in diffusers
                if above is not None:
                    current = model.blend_v(above[j], current, blend)
                if j > 0:
                    current = model.blend_h(row[j - 1], current, blend)
                kept.append(current[:, :, :, : tiling.stride_px, : tiling.stride_px])
            band = torch.cat(kept, dim=-1)[..., : height - top, :width].clamp(-1.0, 1.0)
            out[:, top : top + band.shape[-2]] = pixels_to_frames(band)
            top += band.shape[-2]
            above = row

    def _set_tiling(self, tiled: bool) -> None:
        """Switch diffusers' spatial tiling on with our tile sizes, or off."""
        if tiled:
            t = self.tiling
            self.model.enable_tiling(t.tile_px, t.tile_px, t.stride_px, t.stride_px)
        else:
            self.model.use_tiling = False
