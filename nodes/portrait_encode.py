"""Portrait Encode: the portrait resized and centre-cropped to the generation size, encoded with the VAE."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from comfy_api.latest import io

from ..pipeline.imaging import resize_and_center_crop_images
from .payloads import NamedModel
from .types import CATEGORY, AvatarVAE, PortraitLatent

log = logging.getLogger(__name__)

SIZE_MULTIPLE = 16  # VAE 8x downsampling times the DiT's 2x2 patches
MAX_SIZE = 2048  # beyond 720p buckets the model was never trained; this only guards against typos
RESOLUTIONS = ("512x512", "480p", "720p", "custom")
# Without a portrait (audio+text only) the reference generates at fixed sizes (h, w): 480p 480x832, 720p 768x1280.
AT2V_SIZES = {"480p": (480, 832), "720p": (768, 1280), "512x512": (512, 512)}


@dataclass
class PortraitPayload:
    """LONGCAT_PORTRAIT: the generation size and, for image-to-video, the cropped portrait and its latent."""

    height: int
    width: int
    pixels: torch.Tensor | None  # [1, 3, 1, H, W] in [-1, 1] at the generation size (None: no portrait, at2v)
    latent: torch.Tensor | None  # [1, 16, 1, H/8, W/8] normalised VAE latent of `pixels`
    source_height: int  # size of the original image (speaker boxes and masks are given in its pixels)
    source_width: int


def generation_size(resolution: str, width: int, height: int, image_hw: tuple[int, int] | None) -> tuple[int, int]:
    """(height, width) to generate at: 512x512, the reference's 480p / 720p aspect buckets, or custom."""
    if resolution == "custom":
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(f"custom width and height must be multiples of 16, got {width}x{height}")
        return height, width
    if resolution == "512x512":
        return 512, 512
    if resolution not in AT2V_SIZES:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    if image_hw is None:
        return AT2V_SIZES[resolution]
    from ..pipeline.resolution import bucket_size  # the reference's aspect-ratio tables

    return bucket_size(resolution, *image_hw)


class PortraitEncode(io.ComfyNode):
    """Crops the portrait to the generation size and encodes it as the video's first latent frame."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """VAE, portrait image, resolution (512x512, 480p/720p buckets, custom)."""
        return io.Schema(
            node_id="LongCatAvatarPortraitEncode",
            display_name="LongCat Avatar Portrait Encode",
            category=CATEGORY,
            description="Resizes the portrait to cover the generation size, centre-crops it (as the reference) and "
            "encodes it with the VAE. Without an image the video is generated from audio and text alone.",
            inputs=[
                AvatarVAE.Input("vae", tooltip="From LongCat Avatar VAE Loader."),
                io.Image.Input(
                    "image",
                    optional=True,
                    tooltip="The portrait (first frame of the video). Leave unconnected for audio+text-to-video.",
                ),
                io.Combo.Input(
                    "resolution",
                    options=list(RESOLUTIONS),
                    default="512x512",
                    tooltip="512x512: square, fast. 480p / 720p: the reference's aspect-ratio buckets closest to the "
                    "portrait (e.g. 480x832 for a landscape 16:9 image). custom: width x height below.",
                ),
                io.Int.Input(
                    "width",
                    default=512,
                    min=SIZE_MULTIPLE,
                    max=MAX_SIZE,
                    step=SIZE_MULTIPLE,
                    tooltip="Width for resolution 'custom' (a multiple of 16).",
                ),
                io.Int.Input(
                    "height",
                    default=512,
                    min=SIZE_MULTIPLE,
                    max=MAX_SIZE,
                    step=SIZE_MULTIPLE,
                    tooltip="Height for resolution 'custom' (a multiple of 16).",
                ),
            ],
            outputs=[
                PortraitLatent.Output(display_name="portrait", tooltip="The encoded portrait and the generation size."),
                io.Image.Output(display_name="cropped", tooltip="The portrait exactly as the model sees it."),
            ],
        )

    @classmethod
    def execute(
        cls, vae: NamedModel, resolution: str, width: int, height: int, image: torch.Tensor | None = None
    ) -> io.NodeOutput:
        """Crop (or just size, without image) and encode."""
        if image is not None and (image.dim() != 4 or image.shape[0] < 1 or image.shape[-1] < 3):
            raise ValueError(f"LongCat Avatar Portrait Encode: 'image' must be an IMAGE, got {tuple(image.shape)}")
        source = None if image is None else (int(image.shape[1]), int(image.shape[2]))
        try:
            gen_h, gen_w = generation_size(resolution, width, height, source)
        except ValueError as error:
            raise ValueError(f"LongCat Avatar Portrait Encode: {error}") from error
        if image is None:
            blank = torch.zeros(1, gen_h, gen_w, 3)
            return io.NodeOutput(PortraitPayload(gen_h, gen_w, None, None, gen_h, gen_w), blank)
        if image.shape[0] > 1:
            log.warning("LongCat Avatar: the IMAGE holds %d pictures; the first one is the portrait", image.shape[0])
        unit = resize_and_center_crop_images(image[:1, ..., :3].movedim(-1, 1).float().cpu(), gen_h, gen_w)
        pixels = (unit * 2 - 1).unsqueeze(2)  # [1, 3, 1, H, W] in [-1, 1], as diffusers' VideoProcessor gives it
        latent = vae.model.encode(pixels)
        log.info("LongCat Avatar: portrait %dx%d -> %dx%d", source[1], source[0], gen_w, gen_h)
        payload = PortraitPayload(gen_h, gen_w, pixels, latent, *source)
        return io.NodeOutput(payload, unit.movedim(1, -1))
