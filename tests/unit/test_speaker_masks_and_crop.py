"""Speaker masks (boxes, ComfyUI MASKs, the multi-speaker demo's default halves) and the resize-and-centre-crop helpers."""

from __future__ import annotations

import PIL.Image
import pytest
import torch
from diffusers.video_processor import VideoProcessor

from pipeline.audio.errors import AudioInputError
from pipeline.audio.speaker_masks import (
    default_speaker_boxes,
    resize_speaker_masks,
    speaker_masks_from_boxes,
    speaker_masks_from_tensors,
)
from pipeline.imaging import mask_cover_size, resize_and_center_crop_images, resize_and_center_crop_masks


def _box(height: int, width: int, y0: int, x0: int, y1: int, x1: int) -> torch.Tensor:
    mask = torch.zeros(height, width)
    mask[y0:y1, x0:x1] = 1
    return mask


@pytest.mark.parametrize(
    ("height", "width", "left", "right"),
    [
        (80, 104, (8, 5, 72, 46), (8, 57, 72, 98)),  # half 52: int(5.2)=5, int(46.8)=46, int(57.2)=57, int(98.8)=98
        (101, 201, (10, 10, 90, 90), (10, 110, 90, 190)),  # odd sizes: half 100, int(10.1)=10, int(90.9)=90
        (480, 832, (48, 41, 432, 374), (48, 457, 432, 790)),  # half 416: int(41.6), int(374.4), int(457.6), int(790.4)
    ],
)
def test_default_masks_are_image_halves_with_10_percent_margins(height, width, left, right) -> None:
    assert default_speaker_boxes(height, width) == (left, right)
    masks = speaker_masks_from_boxes(height, width)
    assert masks.shape == (3, height, width) and masks.dtype == torch.float32
    assert torch.equal(masks[0], _box(height, width, *left))
    assert torch.equal(masks[1], _box(height, width, *right))
    assert torch.equal(masks[2], 1 - masks[0] - masks[1])  # background: everything that is not a speaker


def test_boxes_and_extra_people_in_reference_order() -> None:
    boxes = [[2, 3, 20, 30], [10, 25, 40, 60]]  # overlapping speakers
    masks = speaker_masks_from_boxes(50, 70, boxes, others=[0, 60, 10, 70, 40, 0, 50, 10])  # flat 4·k list
    assert masks.shape == (5, 50, 70)
    assert torch.equal(masks[0], _box(50, 70, 2, 3, 20, 30)) and torch.equal(masks[1], _box(50, 70, 10, 25, 40, 60))
    assert torch.equal(masks[2], ((masks[0] + masks[1]) == 0).float())
    assert torch.equal(masks[3], _box(50, 70, 0, 60, 10, 70)) and torch.equal(masks[4], _box(50, 70, 40, 0, 50, 10))
    assert masks[2][5, 65] == 1 and masks[3][5, 65] == 1  # extra people stay in the background, as in the reference
    nested = speaker_masks_from_boxes(50, 70, boxes, others=[[0, 60, 10, 70], [40, 0, 50, 10]])
    assert torch.equal(nested, masks)


def test_boxes_are_clipped_to_the_image() -> None:
    masks = speaker_masks_from_boxes(20, 20, [[-5, -5, 5, 5], [15, 15, 99, 99]])
    assert torch.equal(masks[0], _box(20, 20, 0, 0, 5, 5)) and torch.equal(masks[1], _box(20, 20, 15, 15, 20, 20))


@pytest.mark.parametrize(
    ("boxes", "others", "message"),
    [
        ([[0, 0, 5, 5]], (), "both speakers"),
        ([[0, 0, 5, 5], None], (), "both speakers"),
        ([[0, 0, 5, 5], [0, 0, 5]], (), r"\[y_min, x_min, y_max, x_max\]"),
        ([[0, 0, 5, 5], [5, 5, 5, 9]], (), "covers no pixel"),
        ([[0, 0, 5, 5], [30, 30, 40, 40]], (), "covers no pixel"),
        ([[0, 0, 5, 5], [5, 5, 9, 9]], (1, 2, 3), "4 numbers per person"),
    ],
)
def test_bad_boxes(boxes, others, message) -> None:
    with pytest.raises(AudioInputError, match=message):
        speaker_masks_from_boxes(20, 20, boxes, others)


def test_comfyui_masks_match_boxes_and_are_checked() -> None:
    h1, h2 = _box(30, 40, 2, 2, 20, 15), _box(30, 40, 5, 20, 28, 38)
    from_masks = speaker_masks_from_tensors([h1[None], h2], [_box(30, 40, 0, 0, 3, 3)])
    assert torch.equal(from_masks, speaker_masks_from_boxes(30, 40, [[2, 2, 20, 15], [5, 20, 28, 38]], [[0, 0, 3, 3]]))
    soft = speaker_masks_from_tensors([h1 * 0.5, h2 * 2.0])
    assert soft[0].max() == 0.5 and soft[1].max() == 1.0  # soft masks kept, values clamped to [0, 1]
    with pytest.raises(AudioInputError, match="size"):
        speaker_masks_from_tensors([h1, torch.ones(30, 41)])
    with pytest.raises(AudioInputError, match="empty"):
        speaker_masks_from_tensors([h1, torch.zeros(30, 40)])
    with pytest.raises(AudioInputError, match="exactly 2"):
        speaker_masks_from_tensors([h1])
    with pytest.raises(AudioInputError, match="one"):
        speaker_masks_from_tensors([h1, torch.ones(2, 30, 40)])


@pytest.mark.parametrize(
    ("src", "dst"), [((100, 130), (64, 96)), ((97, 61), (64, 96)), ((480, 832), (480, 832)), ((333, 500), (608, 640))]
)
def test_image_crop_equals_diffusers_video_processor(src, dst) -> None:
    generator = torch.Generator().manual_seed(src[0])
    images = torch.randint(0, 256, (2, 3, *src), generator=generator).float() / 255
    ours = resize_and_center_crop_images(images, *dst)
    assert ours.shape == (2, 3, *dst) and ours.dtype == torch.float32
    processor = VideoProcessor(vae_scale_factor=8)
    for image, result in zip(images, ours, strict=True):
        pil = PIL.Image.fromarray((image * 255).round().byte().permute(1, 2, 0).numpy())
        reference = processor.preprocess(pil, height=dst[0], width=dst[1], resize_mode="crop")[0]
        assert torch.equal(result * 2 - 1, reference)


def test_image_crop_refuses_non_rgb_layouts() -> None:
    with pytest.raises(ValueError, match="3, H, W"):
        resize_and_center_crop_images(torch.zeros(1, 64, 64, 3), 32, 32)


def test_mask_cover_size_uses_the_reference_truncation() -> None:
    assert mask_cover_size(80, 104, 64, 96) == (73, 96)  # 80·96/104 = 73.8 → 73, then crop rows 4..67
    assert mask_cover_size(97, 61, 64, 96) == (152, 96)
    assert mask_cover_size(100, 300, 64, 96) == (64, 192)
    assert mask_cover_size(480, 832, 480, 832) == (480, 832)


def test_mask_resize_identity_constants_and_crop_position() -> None:
    masks = speaker_masks_from_boxes(64, 96)
    assert torch.equal(resize_speaker_masks(masks, 64, 96), masks)  # same size: untouched
    assert torch.equal(resize_and_center_crop_masks(torch.ones(2, 50, 70), 64, 96), torch.ones(2, 64, 96))
    # A 2x-tall mask marked only in its middle half: after the 2x downscale and the centre crop it fills the frame.
    tall = torch.zeros(1, 256, 96)
    tall[:, 64:192] = 1
    assert torch.allclose(resize_and_center_crop_masks(tall, 64, 48), torch.ones(1, 64, 48))
    # Left third set in a 3x-wide source: the crop keeps the middle third only, so nothing of it remains.
    wide = torch.zeros(1, 64, 288)
    wide[..., :96] = 1
    assert resize_and_center_crop_masks(wide, 64, 96).max() == 0


def test_mask_resize_shapes_and_dtypes() -> None:
    masks = speaker_masks_from_boxes(80, 104)
    resized = resize_speaker_masks(masks, 64, 96)
    assert resized.shape == (3, 64, 96) and resized.min() >= 0 and resized.max() <= 1
    assert torch.allclose(resized.sum(0), torch.ones(64, 96), atol=1e-6)  # the classes still partition the image
    batched = resize_and_center_crop_masks(masks[None].to(torch.uint8), 64, 96)
    assert batched.shape == (1, 3, 64, 96) and batched.dtype == torch.float32
    assert torch.equal(batched[0], resized)
