"""Resize-so-it-covers then centre-crop, for portrait images and for speaker masks, exactly as the reference does.

The reference uses two different implementations of the same idea and we reproduce each:
- images: diffusers' VideoProcessor `preprocess(..., resize_mode="crop")`, i.e. PIL Lanczos on the 8-bit image to
  (floor-divided) cover size, pasted centred on the target canvas (`VaeImageProcessor._resize_and_crop`);
- masks: the avatar pipeline's `_resize_and_centercrop_tensor`: torch bilinear (align_corners=False) to a cover size
  truncated with int(), then a crop starting at (new − target) // 2.
The two differ in interpolation and can differ by one pixel in size and crop offset, so never mix them.
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

# 8-bit images: the reference loads image files, so its pixels are k/255 and survive a round trip exactly.
PIXEL_LEVELS = 255


def image_cover_size(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int]:
    """(h, w) diffusers resizes an image to before the crop: one side equals the target, the other floor-divided."""
    if width / height > src_w / src_h:
        return src_h * width // src_w, width
    return height, src_w * height // src_h


def image_crop_rectangle(src_h: int, src_w: int, height: int, width: int) -> tuple[float, float, float, float]:
    """(top, left, bottom, right) in source pixels of the part of the image that the image crop keeps.

    diffusers pastes the cover-size image centred, at offset (target // 2 − cover // 2) on each axis.
    """
    cover_h, cover_w = image_cover_size(src_h, src_w, height, width)
    top, left = cover_h // 2 - height // 2, cover_w // 2 - width // 2
    scale_y, scale_x = src_h / cover_h, src_w / cover_w
    return top * scale_y, left * scale_x, (top + height) * scale_y, (left + width) * scale_x


def mask_cover_size(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int]:
    """(h, w) the reference resizes masks to before the crop: int() of the float products, never below the target."""
    if width / height > src_w / src_h:
        new_h, new_w = int(src_h * width / src_w), width
    else:
        new_h, new_w = height, int(src_w * height / src_h)
    # Equal aspect ratios can round a side to target − 1 in float; the crop would then be a pixel short.
    return max(new_h, height), max(new_w, width)


def _to_pil(image: torch.Tensor) -> PIL.Image.Image:
    """A [3, H, W] float image in [0, 1] as an 8-bit RGB PIL image."""
    array = (image.detach().float().clamp(0, 1) * PIXEL_LEVELS).round().to(torch.uint8)
    return PIL.Image.fromarray(array.permute(1, 2, 0).cpu().numpy())  # uint8 [H, W, 3] is RGB


def resize_and_center_crop_images(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Images [B, 3, H, W] in [0, 1] → [B, 3, height, width] in [0, 1], as diffusers' resize_mode="crop".

    Pixels are quantised to 8 bits first (the reference always starts from an image file); the result is float32
    on the input's device. diffusers' own `preprocess` would then map it to [−1, 1] with `2·x − 1`.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B, 3, H, W], got shape {tuple(images.shape)}")
    from diffusers.image_processor import VaeImageProcessor  # imported on first use: ComfyUI starts faster

    processor = VaeImageProcessor(resample="lanczos")  # VideoProcessor's default resampling filter
    out = []
    for image in images:
        resized = processor.resize(_to_pil(image), height=height, width=width, resize_mode="crop")
        out.append(torch.from_numpy(np.asarray(resized, dtype=np.float32) / PIXEL_LEVELS).permute(2, 0, 1))
    return torch.stack(out).to(images.device)


def resize_and_center_crop_masks(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Masks [..., H, W] (e.g. [K, H, W] speaker masks or a [B, 1, H, W] batch) → [..., height, width].

    Bilinear (align_corners=False) to the cover size, then the centre crop, as the reference's mask resize.
    The dtype is kept for floating masks; other dtypes come back as float32.
    """
    if masks.dim() < 2:
        raise ValueError(f"expected masks [..., H, W], got shape {tuple(masks.shape)}")
    src_h, src_w = int(masks.shape[-2]), int(masks.shape[-1])
    new_h, new_w = mask_cover_size(src_h, src_w, height, width)
    dtype = masks.dtype if masks.is_floating_point() else torch.float32
    flat = masks.reshape(1, -1, src_h, src_w).to(dtype)
    resized = F.interpolate(flat, size=(new_h, new_w), mode="bilinear", align_corners=False)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    cropped = resized[..., top : top + height, left : left + width]
    return cropped.reshape(*masks.shape[:-2], height, width)
