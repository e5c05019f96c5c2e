"""Portrait Encode: the portrait resized and centre-cropped to the generation size, encoded with the VAE."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from comfy_api.latest import io

from ..pipeline.limits import MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, portrait_size_problem
from ..pipeline.portrait import Portrait, encode_portrait, prepare_portrait
from ..pipeline.resolution import RESOLUTION_MODES
from .choices import check_choices
from .managed import portrait_encode_phase
from .payloads import NamedModel
from .types import CATEGORY, AvatarVAE, PortraitLatent

log = logging.getLogger(__name__)


@dataclass
class PortraitPayload:
    """LONGCAT_PORTRAIT: the engine's portrait (size, cropped pixels, latent) and the original image's size."""

    portrait: Portrait
    source_height: int  # size of the original image (speaker boxes and masks are given in its pixels)
    source_width: int

    @property
    def height(self) -> int:
        """Generation height."""
        return self.portrait.height

    @property
    def width(self) -> int:
        """Generation width."""
        return self.portrait.width


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
                    options=list(RESOLUTION_MODES),
                    default="512x512",
                    tooltip="512x512: square, fast. 480p / 720p: the reference's aspect-ratio buckets closest to the "
                    "portrait (e.g. 480x832 for a landscape 16:9 image). custom: width x height below.",
                ),
                io.Int.Input(
                    "width",
                    default=512,
                    min=MIN_SIZE,
                    max=MAX_SIZE,
                    step=SIZE_MULTIPLE,
                    tooltip=f"Width for resolution 'custom' (a multiple of {SIZE_MULTIPLE}).",
                ),
                io.Int.Input(
                    "height",
                    default=512,
                    min=MIN_SIZE,
                    max=MAX_SIZE,
                    step=SIZE_MULTIPLE,
                    tooltip=f"Height for resolution 'custom' (a multiple of {SIZE_MULTIPLE}).",
                ),
            ],
            outputs=[
                PortraitLatent.Output(display_name="portrait", tooltip="The encoded portrait and the generation size."),
                io.Image.Output(display_name="cropped", tooltip="The portrait exactly as the model sees it."),
            ],
        )

    @classmethod
    def validate_inputs(cls, resolution: str) -> bool | str:
        """Refuse an unknown resolution before anything runs (ComfyUI does not check V3 combos)."""
        return check_choices(resolution=(resolution, RESOLUTION_MODES))

    @classmethod
    def execute(
        cls, vae: NamedModel, resolution: str, width: int, height: int, image: torch.Tensor | None = None
    ) -> io.NodeOutput:
        """Crop (or just size, without image) and encode."""
        if image is not None and (image.dim() != 4 or image.shape[0] < 1 or image.shape[-1] not in (1, 3, 4)):
            raise ValueError(f"LongCat Avatar Portrait Encode: 'image' must be an IMAGE, got {tuple(image.shape)}")
        problem = None if image is None else portrait_size_problem(int(image.shape[2]), int(image.shape[1]))
        if problem:
            raise ValueError(f"LongCat Avatar Portrait Encode: the portrait {problem}.")
        if image is not None and image.shape[0] > 1:
            log.warning("LongCat Avatar: the IMAGE holds %d pictures; the first one is the portrait", image.shape[0])
        try:
            portrait = prepare_portrait(None if image is None else image.cpu(), resolution, width, height)
        except ValueError as error:
            raise ValueError(f"LongCat Avatar Portrait Encode: {error}") from error
        source = (portrait.height, portrait.width) if image is None else (int(image.shape[1]), int(image.shape[2]))
        if portrait.pixels is not None and vae.patcher is not None:
            portrait_encode_phase(vae.model, vae.patcher, portrait.height, portrait.width)
        encode_portrait(vae.model, portrait)
        log.info("LongCat Avatar: portrait %dx%d -> %dx%d", source[1], source[0], portrait.width, portrait.height)
        if portrait.pixels is None:
            preview = torch.zeros(1, portrait.height, portrait.width, 3)
        else:
            preview = ((portrait.pixels[:, :, 0] + 1) / 2).clamp(0, 1).movedim(1, -1)
        return io.NodeOutput(PortraitPayload(portrait, *source), preview)
