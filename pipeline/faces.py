"""Speaker boxes from faces: OpenCV's bundled Haar cascade finds frontal faces; the largest become the speakers.

OpenCV is optional: the pack never requires it (a pinned opencv wheel replaces the one other packs installed), and
only this module imports it, lazily. Its 4.x wheels carry the Haar cascade files; 5.x wheels do not.
Boxes are `(y_min, x_min, y_max, x_max)` in image pixels, max exclusive, like the speaker boxes of Audio Encode.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio.speaker_masks import Box
from .imaging import PIXEL_LEVELS

OPENCV_PACKAGE = "opencv-python-headless>=4.8,<5"
CASCADE_FILE = "haarcascade_frontalface_default.xml"  # OpenCV's general frontal-face cascade
SCALE_STEP = 1.1  # image-pyramid step of detectMultiScale: 10% per level, OpenCV's documented default
MIN_NEIGHBOURS = 5  # overlapping hits a face needs; 5 rejects most textured backgrounds (OpenCV's tutorial value)
CASCADE_WINDOW = 24  # the cascade's training window in pixels: nothing smaller can be found
DETECT_MAX_SIDE = 1024  # larger images are shrunk for detection: faces worth a speaker stay far above 24 px
DEFAULT_MIN_FACE_SHARE = 0.05  # a face narrower than 5% of the short side is background, not a speaker
DEFAULT_MARGIN = 0.5  # a speaker's region reaches half a face beyond the face on every side (hair, chin, ears)
# One detection at a time: the node and the preview route share one cascade, and OpenCV does not promise that
# concurrent detectMultiScale calls on one classifier are safe.
_DETECT_LOCK = threading.Lock()


class FaceBoxError(ValueError):
    """The faces cannot give the speakers' boxes (too few faces, no detector, a bad image)."""


@functools.lru_cache(maxsize=1)
def load_face_cascade() -> Any:
    """OpenCV's frontal-face cascade, or FaceBoxError saying how to install OpenCV."""
    try:
        import cv2
    except ImportError as error:
        raise FaceBoxError(
            f"finding faces needs OpenCV, which is not installed: run `pip install '{OPENCV_PACKAGE}'` in ComfyUI's "
            "Python, or draw the speaker boxes in Audio Encode's box editor instead"
        ) from error
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    path = Path(folder) / CASCADE_FILE if folder else None
    if path is None or not path.is_file():
        raise FaceBoxError(
            f"OpenCV {cv2.__version__} ships no face cascade ({CASCADE_FILE}; version 5 wheels dropped them): run "
            f"`pip install '{OPENCV_PACKAGE}'` in ComfyUI's Python"
        )
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FaceBoxError(f"OpenCV could not read its face cascade {path}")
    return cascade


def image_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A ComfyUI IMAGE ([B, H, W, C] or [H, W, C], floats in [0, 1]) or an 8-bit array → 8-bit [H, W, 1 or 3]."""
    array = image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 4:
        array = array[0]
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise FaceBoxError(f"expected an image [H, W, C] with 1, 3 or 4 channels, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array.astype(np.float32) * PIXEL_LEVELS), 0, PIXEL_LEVELS).astype(np.uint8)
    return np.ascontiguousarray(array[..., :3])


def detect_faces(image: torch.Tensor | np.ndarray, min_size: int = CASCADE_WINDOW) -> list[Box]:
    """Every frontal face at least `min_size` pixels wide, as boxes in the image's pixels (unordered)."""
    cascade = load_face_cascade()  # first: it explains a missing OpenCV
    import cv2

    pixels = image_uint8(image)
    gray = pixels[..., 0] if pixels.shape[-1] == 1 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    if scale < 1:
        gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    smallest = max(CASCADE_WINDOW, int(min_size * scale))
    with _DETECT_LOCK:
        found = cascade.detectMultiScale(
            cv2.equalizeHist(gray), scaleFactor=SCALE_STEP, minNeighbors=MIN_NEIGHBOURS, minSize=(smallest, smallest)
        )
    boxes = []
    for x, y, w, h in np.asarray(found, dtype=np.float64).reshape(-1, 4) / scale:
        boxes.append((round(y), round(x), min(height, round(y + h)), min(width, round(x + w))))
    return boxes


def _grow(face: Box, margin: float, height: int, width: int) -> Box:
    """The face box widened by `margin` face sizes on every side, clipped to the image."""
    y0, x0, y1, x1 = face
    dy, dx = round((y1 - y0) * margin), round((x1 - x0) * margin)
    return max(0, y0 - dy), max(0, x0 - dx), min(height, y1 + dy), min(width, x1 + dx)


def _split_neighbours(faces: Sequence[Box], regions: list[Box]) -> list[Box]:
    """Grown regions of faces side by side (left to right) meet half-way between the faces instead of overlapping."""
    out = list(regions)
    for i in range(len(out) - 1):
        left, right = out[i], out[i + 1]
        face_gap = (faces[i][3], faces[i + 1][1])
        overlap_y = left[0] < right[2] and right[0] < left[2]
        if face_gap[0] <= face_gap[1] and left[3] > right[1] and overlap_y:
            middle = (face_gap[0] + face_gap[1]) // 2
            out[i] = (left[0], left[1], left[2], max(middle, face_gap[0]))
            out[i + 1] = (right[0], min(middle, face_gap[1]), right[2], right[3])
    return out


def speaker_boxes_from_faces(
    image: torch.Tensor | np.ndarray,
    count: int = 2,
    min_face_share: float = DEFAULT_MIN_FACE_SHARE,
    margin: float = DEFAULT_MARGIN,
) -> list[Box]:
    """Boxes of the `count` largest faces, left to right, grown by `margin`; refuses when fewer faces are found.

    Faces narrower than `min_face_share` of the image's short side are ignored, so stray detections in the
    background never become speakers.
    """
    if count < 1:
        raise FaceBoxError(f"the number of speakers must be at least 1, got {count}")
    if not 0 <= min_face_share < 1 or margin < 0:
        raise FaceBoxError(f"min_face_share must be in [0, 1) and margin >= 0, got {min_face_share} and {margin}")
    pixels = image_uint8(image)
    height, width = pixels.shape[:2]
    min_size = max(CASCADE_WINDOW, round(min_face_share * min(height, width)))
    faces = detect_faces(pixels, min_size)
    if len(faces) < count:
        raise FaceBoxError(
            f"found {len(faces)} face(s) at least {min_size} px wide ({min_face_share:.0%} of the image's short "
            f"side) in the {width}x{height} portrait, but {count} speakers need {count}: lower min_face_share, use a "
            "portrait where every speaker looks at the camera, or draw the boxes in Audio Encode's box editor"
        )
    largest = sorted(faces, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)[:count]
    ordered = sorted(largest, key=lambda b: b[1] + b[3])  # left to right by the face's centre
    regions = [_grow(face, margin, height, width) for face in ordered]
    return _split_neighbours(ordered, regions)
