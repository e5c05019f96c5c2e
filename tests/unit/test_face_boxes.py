"""Speaker boxes from faces on real photographs (scikit-image's astronaut): the boxes follow mirroring, scaling and
moving, the largest faces win, small faces are ignored, an image without faces is refused readably."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from pipeline.faces import FaceBoxError, detect_faces, load_face_cascade, speaker_boxes_from_faces
from support.face_images import (
    ASTRONAUT_FACE,
    TWO_PEOPLE_FACES,
    astronaut,
    coffee,
    half_size,
    iou,
    mirrored,
    mirrored_face,
    two_people,
)

MIN_IOU = 0.6  # detected vs hand-measured face: the detector's square boxes reach higher into the forehead


def test_face_boxes_of_the_astronaut_follow_mirroring_and_scaling() -> None:
    cases = {
        "original": (astronaut(), ASTRONAUT_FACE),
        "mirrored": (mirrored(astronaut()), mirrored_face(ASTRONAUT_FACE, astronaut().shape[1])),
        "half size": (half_size(astronaut()), tuple(v / 2 for v in ASTRONAUT_FACE)),
    }
    for name, (image, expected) in cases.items():
        (box,) = speaker_boxes_from_faces(image, count=1, margin=0.0)
        assert iou(box, expected) >= MIN_IOU, (name, box, expected)


def test_face_boxes_of_two_people_are_ordered_left_to_right() -> None:
    image = two_people()
    boxes = speaker_boxes_from_faces(image, count=2, margin=0.0)
    assert len(boxes) == 2
    for box, expected in zip(boxes, TWO_PEOPLE_FACES, strict=True):  # the small mirrored copy is on the left
        assert iou(box, expected) >= MIN_IOU, (box, expected)
    # A ComfyUI IMAGE (float [1, H, W, 3]) gives the same boxes as the 8-bit array.
    as_tensor = torch.from_numpy(image.astype(np.float32) / 255)[None]
    assert speaker_boxes_from_faces(as_tensor, count=2, margin=0.0) == boxes


def test_face_boxes_keep_the_largest_and_ignore_small_faces() -> None:
    image = two_people()
    (largest,) = speaker_boxes_from_faces(image, count=1, margin=0.0)
    assert iou(largest, TWO_PEOPLE_FACES[1]) >= MIN_IOU  # the full-size face on the right, not the left-most one
    small_face = TWO_PEOPLE_FACES[0][3] - TWO_PEOPLE_FACES[0][1]
    share = 1.5 * small_face / min(image.shape[:2])  # the small face is narrower than this share
    with pytest.raises(FaceBoxError, match=r"found 1 face\(s\) at least \d+ px wide .* 2 speakers need 2"):
        speaker_boxes_from_faces(image, count=2, min_face_share=share, margin=0.0)
    (kept,) = speaker_boxes_from_faces(image, count=1, min_face_share=share, margin=0.0)
    assert kept == largest


def test_face_regions_grow_by_the_margin_and_do_not_overlap() -> None:
    image = two_people()
    faces = speaker_boxes_from_faces(image, count=2, margin=0.0)
    regions = speaker_boxes_from_faces(image, count=2, margin=0.5)
    height, width = image.shape[:2]
    for face, region in zip(faces, regions, strict=True):
        y0, x0, y1, x1 = face
        assert region[0] <= y0 and region[1] <= x0 and region[2] >= y1 and region[3] >= x1
        assert min(region[:2]) >= 0 and region[2] <= height and region[3] <= width
        assert (region[2] - region[0]) * (region[3] - region[1]) > 1.5 * (y1 - y0) * (x1 - x0)
    close = np.concatenate([astronaut()[:, 130:320], mirrored(astronaut())[:, 192:382]], axis=1)  # faces ~100 px apart
    left, right = speaker_boxes_from_faces(close, count=2, margin=0.5)
    assert left[3] <= right[1], (left, right)  # grown regions would overlap: they meet between the faces
    plain_left, plain_right = speaker_boxes_from_faces(close, count=2, margin=0.0)
    assert left[3] >= plain_left[3] and right[1] <= plain_right[1]


def test_face_boxes_refuse_an_image_without_faces() -> None:
    assert detect_faces(coffee()) == []
    with pytest.raises(FaceBoxError, match=r"found 0 face\(s\) .* 2 speakers need 2.*box editor"):
        speaker_boxes_from_faces(coffee(), count=2)


def test_face_boxes_refuse_bad_arguments() -> None:
    with pytest.raises(FaceBoxError, match="at least 1"):
        speaker_boxes_from_faces(astronaut(), count=0)
    with pytest.raises(FaceBoxError, match="min_face_share"):
        speaker_boxes_from_faces(astronaut(), count=1, min_face_share=1.5)
    with pytest.raises(FaceBoxError, match="channels"):
        speaker_boxes_from_faces(np.zeros((4, 5, 6), np.uint8), count=1)


def test_face_boxes_without_opencv_say_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # what Python does for a module that is not installed
    load_face_cascade.cache_clear()
    try:
        with pytest.raises(FaceBoxError) as refused:
            speaker_boxes_from_faces(astronaut(), count=1)
    finally:
        load_face_cascade.cache_clear()
    message = str(refused.value)
    assert "needs OpenCV" in message and "pip install 'opencv-python-headless>=4.8,<5'" in message
    assert "box editor" in message
