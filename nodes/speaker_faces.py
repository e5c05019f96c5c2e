"""Speaker Boxes from Faces: the portrait's faces → one box and one MASK per speaker, for Audio Encode."""

from __future__ import annotations

import logging

import torch
from comfy_api.latest import io, ui

from ..pipeline.audio.speaker_masks import NUM_HUMANS, speaker_masks_from_boxes
from ..pipeline.faces import DEFAULT_MARGIN, DEFAULT_MIN_FACE_SHARE, FaceBoxError, speaker_boxes_from_faces
from .audio_encode import format_boxes
from .types import CATEGORY

log = logging.getLogger(__name__)

NODE_NAME = "LongCat Avatar Speaker Boxes from Faces"
MAX_MARGIN = 2.0  # two face sizes on every side already reach a person's shoulders


class SpeakerBoxesFromFaces(io.ComfyNode):
    """Finds the faces in the portrait and returns the speakers' regions, left to right."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """The portrait, the smallest face that counts, the margin around each face; boxes and MASKs out."""
        return io.Schema(
            node_id="LongCatAvatarSpeakerBoxesFromFaces",
            display_name=NODE_NAME,
            category=CATEGORY,
            description="Finds the faces in the portrait (OpenCV's bundled face detector, no download; install "
            "opencv-python-headless>=4.8,<5) and returns the two largest as speaker 1 (left) and speaker 2 "
            "(right), for Audio Encode's speaker_boxes or its speaker masks.",
            inputs=[
                io.Image.Input("image", tooltip="The portrait, the same image Portrait Encode gets."),
                io.Float.Input(
                    "min_face_share",
                    default=DEFAULT_MIN_FACE_SHARE,
                    min=0.0,
                    max=0.9,
                    step=0.01,
                    tooltip="Faces narrower than this share of the image's short side are ignored (people far in "
                    "the background, false detections).",
                ),
                io.Float.Input(
                    "margin",
                    default=DEFAULT_MARGIN,
                    min=0.0,
                    max=MAX_MARGIN,
                    step=0.05,
                    tooltip="How far each speaker's region reaches beyond the face, in face sizes (0.5: half a "
                    "face on every side). Neighbouring regions meet half-way between the faces.",
                ),
            ],
            outputs=[
                io.String.Output(display_name="speaker_boxes", tooltip="For Audio Encode's speaker_boxes input."),
                io.Mask.Output(display_name="speaker_1_mask", tooltip="The left speaker's region."),
                io.Mask.Output(display_name="speaker_2_mask", tooltip="The right speaker's region."),
            ],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, min_face_share: float, margin: float) -> io.NodeOutput:
        """Detect, keep the largest faces, order them left to right."""
        try:
            boxes = speaker_boxes_from_faces(image, NUM_HUMANS, min_face_share, margin)
        except FaceBoxError as error:
            raise ValueError(f"{NODE_NAME}: {error}") from error
        height, width = int(image.shape[-3]), int(image.shape[-2])
        masks = speaker_masks_from_boxes(height, width, boxes)
        text = format_boxes(boxes)
        log.info("LongCat Avatar: speaker boxes from faces: %s", text.replace("\n", "; "))
        return io.NodeOutput(text, masks[0][None], masks[1][None], ui=ui.PreviewText(text))
