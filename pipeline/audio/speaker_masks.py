"""Speaker masks for two-person generation: which image pixels belong to which audio stream (as the reference's
run_demo_avatar_multi_audio_to_video.py builds them).

Masks are [K, H, W] float in source-image pixels, in the order the DiT expects: human1, human2, background,
then one mask per extra (silent) person. Background is 1 wherever neither human mask is set (extra people do not
remove pixels from it, as in the reference). `resize_speaker_masks` brings them to the generation size with the
reference's mask resize-and-centre-crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..imaging import resize_and_center_crop_masks
from .errors import AudioInputError

# Default boxes when the user gives none: each image half with a 10% margin on every side (the demo's face_scale).
FACE_MARGIN = 0.1
NUM_HUMANS = 2  # the model conditions two speaking people; everyone else shares the silent stream

Box = tuple[int, int, int, int]  # [y_min, x_min, y_max, x_max] in image pixels, max exclusive


def default_speaker_boxes(height: int, width: int) -> tuple[Box, Box]:
    """Left-half and right-half boxes with 10% margins, with the reference's int() truncations."""
    y_min, y_max = int(height * FACE_MARGIN), int(height * (1 - FACE_MARGIN))
    half = width // 2
    left = (y_min, int(half * FACE_MARGIN), y_max, int(half * (1 - FACE_MARGIN)))
    right = (y_min, int(half * FACE_MARGIN + half), y_max, int(half * (1 - FACE_MARGIN) + half))
    return left, right


def _box_mask(height: int, width: int, box: Sequence[float], label: str) -> torch.Tensor:
    """A [H, W] mask that is 1 inside `box` ([y_min, x_min, y_max, x_max], clipped to the image)."""
    if len(box) != 4:
        raise AudioInputError(f"{label} box must be [y_min, x_min, y_max, x_max], got {list(box)}")
    y0, x0, y1, x1 = (int(v) for v in box)
    y0, y1 = max(0, y0), min(height, y1)
    x0, x1 = max(0, x0), min(width, x1)
    if y1 <= y0 or x1 <= x0:
        raise AudioInputError(f"{label} box {list(box)} covers no pixel of the {height}x{width} image")
    mask = torch.zeros(height, width)
    mask[y0:y1, x0:x1] = 1
    return mask


def _split_others(others: Sequence) -> list[Sequence[float]]:
    """Extra-person boxes given as a list of boxes or as the reference's flat list of 4·k numbers."""
    items = list(others)
    if items and not isinstance(items[0], (list, tuple)):
        if len(items) % 4:
            raise AudioInputError(f"'others' must hold 4 numbers per person, got {len(items)} numbers")
        return [items[i : i + 4] for i in range(0, len(items), 4)]
    return items


def _with_background(humans: list[torch.Tensor], others: list[torch.Tensor]) -> torch.Tensor:
    """Stack [human1, human2, background, others…], background = 1 where no human mask is set."""
    background = (torch.stack(humans).sum(0) <= 0).float()
    return torch.stack([*humans, background, *others])


def speaker_masks_from_boxes(
    height: int, width: int, boxes: Sequence[Sequence[float]] | None = None, others: Sequence = ()
) -> torch.Tensor:
    """Masks [3 + len(others), H, W] from two speaker boxes, or the default left/right halves when `boxes` is None."""
    if boxes is None:
        boxes = default_speaker_boxes(height, width)
    if len(boxes) != NUM_HUMANS or any(b is None for b in boxes):
        raise AudioInputError("give a box for both speakers (human1, human2), or none to use the left/right halves")
    humans = [_box_mask(height, width, box, f"speaker {i + 1}") for i, box in enumerate(boxes)]
    extra = [_box_mask(height, width, box, f"extra person {i + 1}") for i, box in enumerate(_split_others(others))]
    return _with_background(humans, extra)


def _mask_2d(mask: torch.Tensor, label: str) -> torch.Tensor:
    """A ComfyUI MASK ([H, W] or [1, H, W]) as a float [H, W] in [0, 1]."""
    mask = torch.as_tensor(mask)
    if mask.dim() == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.dim() != 2:
        raise AudioInputError(f"{label} mask must be one [H, W] MASK, got shape {tuple(mask.shape)}")
    if not torch.isfinite(mask).all():
        raise AudioInputError(f"{label} mask contains NaN or infinite values")
    return mask.detach().float().cpu().clamp(0, 1)


def speaker_masks_from_tensors(humans: Sequence[torch.Tensor], others: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """Masks [3 + len(others), H, W] from two ComfyUI MASKs (one per speaker) and optional extra-person MASKs."""
    if len(humans) != NUM_HUMANS:
        raise AudioInputError(f"give exactly {NUM_HUMANS} speaker masks (human1, human2), got {len(humans)}")
    people = [_mask_2d(m, f"speaker {i + 1}") for i, m in enumerate(humans)]
    extra = [_mask_2d(m, f"extra person {i + 1}") for i, m in enumerate(others)]
    sizes = {tuple(m.shape) for m in people + extra}
    if len(sizes) != 1:
        raise AudioInputError(f"speaker masks must all have the image's size, got sizes {sorted(sizes)}")
    if any(float(m.sum()) <= 0 for m in people):
        raise AudioInputError("a speaker mask is empty; paint the speaker's region or use boxes")
    return _with_background(people, extra)


def resize_speaker_masks(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Masks [K, H, W] at source size → [K, height, width] with the reference's bilinear cover-and-crop."""
    return resize_and_center_crop_masks(masks, height, width)
