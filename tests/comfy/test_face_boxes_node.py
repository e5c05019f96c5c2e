"""LongCat Avatar Speaker Boxes from Faces on a real ComfyUI: the engine's boxes left to right, a readable refusal
for a picture without faces, and its boxes and its MASKs steer Audio Encode alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.faces import speaker_boxes_from_faces
from support.avatar_graph import api_workflow, ensure_tiny_models, fill_workflow, make_speech, node_id
from support.comfy_server import ComfyServer
from support.face_images import coffee, save_png, two_people
from support.video_probe import decode_frames

pytestmark = [pytest.mark.comfy]

FACES = "LongCatAvatarSpeakerBoxesFromFaces"
SIZE = (96, 64)  # (width, height): landscape like the two-person picture, tiny for the CPU


@pytest.fixture(scope="module")
def pictures(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The two-person picture and the coffee cup, uploaded."""
    folder = tmp_path_factory.mktemp("faces-node")
    return {
        "people": comfy_server.upload(save_png(two_people(), folder / "faces_node_people.png")),
        "coffee": comfy_server.upload(save_png(coffee(), folder / "faces_node_coffee.png")),
    }


def faces_prompt(image: str) -> dict[str, Any]:
    """Load Image → Speaker Boxes from Faces → Preview Any (the boxes text)."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": FACES, "inputs": {"image": ["1", 0], "min_face_share": 0.05, "margin": 0.5}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}},
    }


def test_face_boxes_node_finds_the_speakers_left_to_right(comfy_server: ComfyServer, pictures) -> None:
    run = comfy_server.run(faces_prompt(pictures["people"]), timeout=300)
    assert run.status == "success", run.error_message()
    expected = "\n".join(", ".join(map(str, box)) for box in speaker_boxes_from_faces(two_people()))
    assert run.outputs("3")["text"] == [expected]
    assert run.outputs("2")["text"] == [expected]  # also shown in the node


def test_face_boxes_node_refuses_a_picture_without_faces(comfy_server: ComfyServer, pictures) -> None:
    run = comfy_server.run(faces_prompt(pictures["coffee"]), timeout=300)
    error = next(data for kind, data in run.history["status"]["messages"] if kind == "execution_error")
    assert error["node_type"] == FACES
    message = error["exception_message"]
    assert message.startswith("LongCat Avatar Speaker Boxes from Faces: found 0 face(s)") and "2 speakers" in message


def _video(comfy_server: ComfyServer, prompt: dict[str, Any], destination: Path) -> np.ndarray:
    run = comfy_server.run(prompt, timeout=900)
    assert run.status == "success", f"{run.error_message()}\n{comfy_server.log_tail()}"
    item = run.outputs(node_id(prompt, "LongCatAvatarVideoCombine"))["images"][0]
    return decode_frames(comfy_server.fetch_output(item, destination))


def test_face_boxes_node_boxes_and_masks_steer_audio_encode_alike(
    comfy_server: ComfyServer, pictures, tmp_path: Path
) -> None:
    ensure_tiny_models(comfy_server.models_dir)
    speech = [make_speech(tmp_path / "a.wav", "Good morning."), make_speech(tmp_path / "b.wav", "Good evening.")]
    audios = [comfy_server.upload(path) for path in speech]
    videos = {}
    for tag in ("boxes", "masks"):
        prompt = fill_workflow(
            api_workflow("longcat_avatar_v15_two_speakers"), pictures["people"], audios, SIZE, f"faces_node/{tag}"
        )
        load, encode = node_id(prompt, "LoadImage"), node_id(prompt, "LongCatAvatarAudioEncode")
        prompt["faces"] = {"class_type": FACES, "inputs": {"image": [load, 0], "min_face_share": 0.05, "margin": 0.5}}
        if tag == "boxes":
            prompt[encode]["inputs"]["speaker_boxes"] = ["faces", 0]
        else:
            prompt[encode]["inputs"].update(speaker_1_mask=["faces", 1], speaker_2_mask=["faces", 2])
        videos[tag] = _video(comfy_server, prompt, tmp_path / f"{tag}.mp4")
    assert videos["boxes"].shape[0] > 10 and np.array_equal(videos["boxes"], videos["masks"])
