"""Real photographs for the face tests (scikit-image's bundled samples) and their hand-measured face boxes.

The astronaut's face was measured by eye on an 4x enlargement with an 8-pixel grid drawn over it (eyebrow-level
forehead below the fringe, chin, both cheeks); every other expected box is that box moved through the same
mirroring, scaling and placing as the image, so no box the detector happens to return is written down here.
Boxes are (y_min, x_min, y_max, x_max) in image pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]

ASTRONAUT_FACE: Box = (78, 184, 164, 272)  # in skimage.data.astronaut(), 512x512
# The two-person picture: a mirrored half-size astronaut on the left, the original on the right.
TWO_PEOPLE_SIZE = (512, 896)  # (height, width)
TWO_PEOPLE_BACKGROUND = 200  # flat light grey, like the astronaut's own backdrop
SMALL_AT = (200, 64)  # (top, left) of the half-size mirrored copy
LARGE_AT = (0, 384)  # (top, left) of the original


def astronaut() -> np.ndarray:
    """skimage.data.astronaut(): Eileen Collins, 512x512 RGB uint8."""
    from skimage import data

    return data.astronaut()


def coffee() -> np.ndarray:
    """skimage.data.coffee(): a cup of coffee, no face, 400x600 RGB uint8."""
    from skimage import data

    return data.coffee()


def mirrored(image: np.ndarray) -> np.ndarray:
    """Left and right swapped."""
    return np.ascontiguousarray(image[:, ::-1])


def mirrored_face(box: Box, width: int) -> Box:
    """A box in a picture of `width` pixels after mirroring the picture."""
    y0, x0, y1, x1 = box
    return (y0, width - x1, y1, width - x0)


def half_size(image: np.ndarray) -> np.ndarray:
    """Scaled by 0.5 (Lanczos)."""
    height, width = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((width // 2, height // 2), Image.LANCZOS))


def _moved(box: Box, top: float, left: float) -> Box:
    return (box[0] + top, box[1] + left, box[2] + top, box[3] + left)


def two_people() -> np.ndarray:
    """Two people: the astronaut mirrored at half size on the left, the original astronaut on the right."""
    canvas = np.full((*TWO_PEOPLE_SIZE, 3), TWO_PEOPLE_BACKGROUND, np.uint8)
    small = half_size(mirrored(astronaut()))
    canvas[SMALL_AT[0] : SMALL_AT[0] + small.shape[0], SMALL_AT[1] : SMALL_AT[1] + small.shape[1]] = small
    large = astronaut()
    canvas[LARGE_AT[0] : LARGE_AT[0] + large.shape[0], LARGE_AT[1] : LARGE_AT[1] + large.shape[1]] = large
    return canvas


def _two_people_faces() -> tuple[Box, Box]:
    width = astronaut().shape[1]
    small = tuple(v / 2 for v in mirrored_face(ASTRONAUT_FACE, width))
    return _moved(small, *SMALL_AT), _moved(ASTRONAUT_FACE, *LARGE_AT)


TWO_PEOPLE_FACES = _two_people_faces()  # left (small, mirrored) first


def save_png(image: np.ndarray, path: Path) -> Path:
    """Write an RGB uint8 array as PNG."""
    Image.fromarray(image).save(path)
    return path


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    height = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    width = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = height * width
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0
