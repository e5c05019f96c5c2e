"""The /longcat/preview/* routes on a real ComfyUI: the crop preview is the engine's crop, the faces are the engine's
faces, the audio plan is the engine's plan, the model files are found or named with their download page."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from pipeline.faces import speaker_boxes_from_faces
from pipeline.imaging import PIXEL_LEVELS, image_crop_rectangle
from pipeline.portrait import prepare_portrait
from pipeline.preflight import crop_preview, plan_audio
from support.audio_helpers import read_audio
from support.avatar_graph import ensure_tiny_models, make_speech
from support.comfy_server import ComfyServer
from support.face_images import coffee, save_png, two_people

pytestmark = [pytest.mark.comfy]

PREVIEW = "/longcat/preview"
WHISPER_CHOICE = "longcat/LongCat-Video-Avatar-1.5/whisper-large-v3"


def post(server: ComfyServer, name: str, body: dict[str, Any]) -> requests.Response:
    """POST a preview route."""
    return requests.post(f"{server.url}{PREVIEW}/{name}", json=body, timeout=120)


@pytest.fixture(scope="module")
def media(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The two-person picture, the coffee picture and two speech files, uploaded."""
    folder = tmp_path_factory.mktemp("preview-media")
    people = two_people()
    return {
        "people": comfy_server.upload(save_png(people, folder / "two_people.png")),
        "people_pixels": people,
        "coffee": comfy_server.upload(save_png(coffee(), folder / "coffee.png")),
        "speech": make_speech(folder / "one.wav", "Hello there, how are you today?"),
        "speech_2": make_speech(folder / "two.wav", "Fine, thanks."),
    }


def _as_image(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.astype(np.float32) / PIXEL_LEVELS)[None]


def test_box_editor_route_crop_equals_the_engine_crop(comfy_server: ComfyServer, media: dict[str, Any]) -> None:
    boxes = "40, 20, 300, 330\n0, 500, 260, 800"
    body = {"image": media["people"], "resolution": "480p", "width": 0, "height": 0, "speaker_boxes": boxes,
            "extra_people_boxes": "400, 0, 512, 100"}  # fmt: skip
    answer = post(comfy_server, "crop", body).json()
    image = _as_image(media["people_pixels"])
    engine = prepare_portrait(image, "480p")
    assert answer["size"] == {"height": engine.height, "width": engine.width} == {"height": 480, "width": 832}
    assert answer["source"] == {"height": 512, "width": 896}
    png = answer["cropped"].removeprefix("data:image/png;base64,")
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB"), dtype=np.float32)
    expected = (((engine.pixels[0, :, 0] + 1) / 2).clamp(0, 1).permute(1, 2, 0) * PIXEL_LEVELS).round().numpy()
    assert np.array_equal(shown, expected)
    crop = image_crop_rectangle(512, 896, 480, 832)
    assert [answer["crop"][k] for k in ("top", "left", "bottom", "right")] == list(crop)
    local = crop_preview(image, "480p", 0, 0, [[40, 20, 300, 330], [0, 500, 260, 800]], [[400, 0, 512, 100]])
    assert [m["name"] for m in answer["masks"]] == local.mask_names()
    assert torch.equal(torch.tensor([m["cells"] for m in answer["masks"]], dtype=torch.bool), local.grid_masks)
    assert answer["grid"] == {"height": 30, "width": 52}
    assert answer["boxes"]["speakers"] == [[40, 20, 300, 330], [0, 500, 260, 800]]
    assert answer["view"] == {"filename": media["people"], "subfolder": "", "type": "input"}
    assert answer["defaults"] is False and answer["note"] == ""


def test_box_editor_route_without_boxes_shows_the_default_halves(comfy_server, media) -> None:
    answer = post(comfy_server, "crop", {"image": media["people"], "resolution": "512x512"}).json()
    assert answer["defaults"] is True and answer["boxes"]["speakers"] == []
    assert answer["boxes"]["used"] == [[51, 44, 460, 403], [51, 492, 460, 851]]  # halves with 10% margins
    one = post(comfy_server, "crop", {"image": media["people"], "speaker_boxes": "1, 2, 3, 4"}).json()
    assert "needs 2" in one["note"] and one["defaults"] is True


def test_box_editor_route_refuses_bad_requests_readably(comfy_server: ComfyServer, media: dict[str, Any]) -> None:
    bad = post(comfy_server, "crop", {"image": media["people"], "speaker_boxes": "10, 20, 30"})
    assert bad.status_code == 400 and "speaker_boxes: '10, 20, 30' is not a box" in bad.json()["error"]
    missing = post(comfy_server, "crop", {"image": "nobody.png"})
    assert missing.status_code == 404 and "upload it" in missing.json()["error"]
    outside = post(comfy_server, "crop", {"image": "../../../../etc/hostname"})
    assert outside.status_code == 403
    size = post(comfy_server, "crop", {"image": media["people"], "resolution": "custom", "width": 100, "height": 64})
    assert size.status_code == 400 and "multiples of 16" in size.json()["error"]
    assert post(comfy_server, "crop", ["not", "an", "object"]).status_code == 400  # type: ignore[arg-type]


def test_face_route_finds_the_engines_speaker_boxes(comfy_server: ComfyServer, media: dict[str, Any]) -> None:
    answer = post(comfy_server, "faces", {"image": media["people"]}).json()
    expected = speaker_boxes_from_faces(_as_image(media["people_pixels"]))
    assert answer["boxes"] == [list(b) for b in expected]
    assert answer["text"] == "\n".join(", ".join(map(str, b)) for b in expected)  # Audio Encode's box lines
    refused = post(comfy_server, "faces", {"image": media["coffee"]})
    assert refused.status_code == 422 and "found 0 face(s)" in refused.json()["error"]


def test_box_editor_route_plans_the_audio(comfy_server: ComfyServer, media: dict[str, Any]) -> None:
    ensure_tiny_models(comfy_server.models_dir)
    one, two = comfy_server.upload(media["speech"]), comfy_server.upload(media["speech_2"])
    answer = post(
        comfy_server, "audio", {"audio": one, "audio_2": two, "mode": "add", "audio_encoder": WHISPER_CHOICE}
    ).json()
    local = plan_audio([read_audio(media["speech"]), read_audio(media["speech_2"])], "add", "v1.5")
    assert answer["version_known"] is True and answer["speakers"] == 2
    assert answer["duration_s"] == pytest.approx(local.duration_s, abs=1e-3)
    assert answer["plans"] == [{"version": "v1.5", "fps": 25, "segments": local.num_segments, "frames": local.frames,
                                "generated_frames": local.generated_frames}]  # fmt: skip
    unknown = post(comfy_server, "audio", {"audio": one, "audio_encoder": "longcat/nothing"}).json()
    assert unknown["version_known"] is False and [p["version"] for p in unknown["plans"]] == ["v1.0", "v1.5"]
    assert post(comfy_server, "audio", {"audio": ""}).status_code == 400


def test_box_editor_route_says_which_model_files_are_there(comfy_server: ComfyServer) -> None:
    ensure_tiny_models(comfy_server.models_dir)
    table = comfy_server.get_json(f"{PREVIEW}/models")
    assert table["LongCatAvatarModelLoader"] == ["lora", "model"]
    assert set(table) == {"LongCatAvatarModelLoader", "LongCatAvatarAudioEncoderLoader", "LongCatAvatarVAELoader",
                          "LongCatAvatarTextEncoderLoader"}  # fmt: skip
    values = {"model": "longcat/LongCat-Video-Avatar-1.5/base_model", "lora": "none"}
    files = post(comfy_server, "models", {"node": "LongCatAvatarModelLoader", "values": values}).json()["files"]
    assert files["model"]["found"] is True and files["model"]["path"].endswith("LongCat-Video-Avatar-1.5/base_model")
    assert files["lora"] == {"found": True, "path": None}
    values = {"model": "someone_elses_dit.safetensors"}
    missing = post(comfy_server, "models", {"node": "LongCatAvatarModelLoader", "values": values}).json()["files"]
    assert missing["model"]["found"] is False
    assert missing["model"]["page"] == "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar-1.5"
    assert (
        "someone_elses_dit.safetensors" in missing["model"]["message"]
        and "diffusion_models" in missing["model"]["message"]
    )
    assert post(comfy_server, "models", {"node": "KSampler", "values": {}}).status_code == 404
