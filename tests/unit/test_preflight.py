"""What the box editor and the pre-run notes show, from the engine: the crop rectangle is exactly what the image crop
keeps, the token masks follow the boxes through the crop, and the audio plan counts segments and frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.audio.speaker_masks import default_speaker_boxes
from pipeline.imaging import PIXEL_LEVELS, image_crop_rectangle, resize_and_center_crop_images
from pipeline.preflight import audio_encoder_version, crop_preview, plan_audio, plan_audio_all_versions
from support.face_images import astronaut, two_people
from support.refvec import refvec_roots


def _image_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.float32) / PIXEL_LEVELS)[None]


@pytest.mark.parametrize(
    ("source", "size"),
    [
        (two_people(), (512, 512)),
        (two_people(), (480, 832)),
        (astronaut()[:, :300], (320, 576)),
        (astronaut(), (96, 64)),
    ],
)
def test_box_editor_crop_rectangle_is_what_the_image_crop_keeps(source: np.ndarray, size: tuple[int, int]) -> None:
    height, width = size
    top, left, bottom, right = image_crop_rectangle(*source.shape[:2], height, width)
    engine = resize_and_center_crop_images(_image_tensor(source).permute(0, 3, 1, 2), height, width)[0]
    engine = (engine.permute(1, 2, 0) * PIXEL_LEVELS).round().numpy()
    # PIL resizes exactly that source rectangle to the target with the same Lanczos filter.
    region = Image.fromarray(source).resize((width, height), Image.LANCZOS, box=(left, top, right, bottom))
    assert np.abs(np.asarray(region, dtype=np.float64) - engine).mean() < 0.5
    inner = (left + 4, top + 4, right - 4, bottom - 4)
    smaller = Image.fromarray(source).resize((width, height), Image.LANCZOS, box=inner)
    assert np.abs(np.asarray(smaller, dtype=np.float64) - engine).mean() > 1  # the comparison tells 4 px apart


def test_box_editor_preview_pixels_are_the_portrait_crop() -> None:
    image = _image_tensor(two_people())
    preview = crop_preview(image, "480p", 0, 0)
    assert preview.size_hw == (480, 832) and preview.source_hw == (512, 896)
    engine = resize_and_center_crop_images(image.permute(0, 3, 1, 2), 480, 832)[0].permute(1, 2, 0)
    assert torch.equal((preview.pixels * PIXEL_LEVELS).round(), (engine * PIXEL_LEVELS).round())  # equal in 8 bits


def test_box_editor_token_masks_follow_the_boxes_through_the_crop() -> None:
    square = torch.zeros(1, 512, 512, 3)  # the generation size: no resize, so the expected tokens are exact
    halves = [[0, 0, 512, 256], [0, 256, 512, 512]]
    preview = crop_preview(square, "512x512", 0, 0, halves)
    assert preview.grid_masks.shape == (3, 32, 32)  # 512 / 16 tokens a side
    assert preview.grid_masks[0, :, :16].all() and not preview.grid_masks[0, :, 16:].any()
    assert preview.grid_masks[1, :, 16:].all() and not preview.grid_masks[1, :, :16].any()
    assert not preview.grid_masks[2].any() and preview.empty_speakers == []
    # A landscape source cropped to a square keeps its middle: a box on the far left falls outside.
    wide = torch.zeros(1, 512, 1024, 3)
    preview = crop_preview(wide, "512x512", 0, 0, [[0, 0, 512, 240], [64, 480, 448, 640]], [[0, 800, 80, 1024]])
    assert preview.crop == (0, 256, 512, 768)
    assert preview.empty_speakers == [1] and not preview.grid_masks[0].any()
    # speaker 2: source x 480..640 → crop x 224..384 → tokens 14..23; y 64..448 → rows 4..27
    columns = torch.nonzero(preview.grid_masks[1].any(0)).flatten().tolist()
    rows = torch.nonzero(preview.grid_masks[1].any(1)).flatten().tolist()
    assert (columns[0], columns[-1], rows[0], rows[-1]) == (14, 23, 4, 27)
    assert preview.mask_names() == ["speaker 1", "speaker 2", "background", "extra person 1"]
    assert not preview.grid_masks[3].any()  # the extra person also sits outside the crop


def test_box_editor_preview_without_boxes_uses_the_default_halves() -> None:
    preview = crop_preview(torch.zeros(1, 100, 200, 3), "custom", 96, 64)
    assert preview.boxes == [tuple(map(float, b)) for b in default_speaker_boxes(100, 200)]
    assert preview.size_hw == (64, 96) and preview.grid_masks.shape == (3, 4, 6)


def _speech(seconds: float, rate: int) -> dict:
    return {"waveform": torch.zeros(1, 1, round(seconds * rate)), "sample_rate": rate}


def test_box_editor_audio_plan_counts_segments_and_frames() -> None:
    one = plan_audio([_speech(3.2, 22050)], "para", "v1.5")
    assert (one.duration_s, one.fps, one.num_segments, one.frames, one.generated_frames) == (3.2, 25, 1, 80, 93)
    older = plan_audio([_speech(3.2, 22050)], "para", "v1.0")
    assert (older.fps, older.num_segments, older.frames) == (16, 1, 52)  # ceil(3.2 * 16) = 52
    para = plan_audio([_speech(3.2, 16000), _speech(2.0, 44100)], "para", "v1.5")
    assert para.duration_s == 3.2 and para.frames == 80
    talk = plan_audio([_speech(3.2, 16000), _speech(2.0, 44100)], "add", "v1.5")
    assert talk.duration_s == pytest.approx(5.2) and (talk.num_segments, talk.frames) == (2, 130)  # 93 + 80 ≥ 130
    assert [p.version for p in plan_audio_all_versions([_speech(1.0, 16000)], "para")] == ["v1.0", "v1.5"]


def test_box_editor_audio_encoder_version_from_config_or_tensors() -> None:
    audio = refvec_roots()[0] / "audio"
    assert audio_encoder_version(audio / "whisper_tiny") == "v1.5"
    assert audio_encoder_version(audio / "wav2vec2_tiny") == "v1.0"
    assert audio_encoder_version(audio / "whisper_tiny" / "model.safetensors") == "v1.5"  # a single file: its tensors
    assert audio_encoder_version(audio / "wav2vec2_tiny" / "model.safetensors") == "v1.0"
