"""Invalid choices are refused through POST /prompt: ComfyUI 0.3.75 does not check V3 combo values, so every node
checks its own and names the allowed ones; v1.0 with distilled=on and a Text Encode with two encoders are refused."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from support.avatar_graph import api_workflow, fill_workflow, make_portrait, make_speech, node_id, probe_node
from support.comfy_server import ComfyServer
from support.tiny_models import TinyTextEncoder, write_comfy_umt5_file

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

V15 = "longcat_avatar_v15_single_distilled"
V10 = "longcat_avatar_v10_single_full_guidance"
SIZE = (32, 32)  # the graphs that run stop before sampling; the smallest size keeps their encoders quick
DTYPES = "auto, bf16, fp16, fp32"


@pytest.fixture(scope="module")
def files(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Uploaded portrait and speech."""
    folder = tmp_path_factory.mktemp("choices")
    image = comfy_server.upload(make_portrait(folder / "face.png"))
    return {"image": image, "audio": comfy_server.upload(make_speech(folder / "hi.wav", "Hi there."))}


def node_errors(server: ComfyServer, prompt: dict[str, Any]) -> dict[str, Any]:
    """POST /prompt and return its node_errors (the prompt must be refused with 400)."""
    response = requests.post(f"{server.url}/prompt", json={"prompt": prompt, "client_id": server.client_id}, timeout=60)
    assert response.status_code == 400, response.text
    return response.json()["node_errors"]


@pytest.mark.parametrize(
    ("class_type", "widget", "value", "allowed"),
    [
        ("LongCatAvatarSampler", "distilled", "maybe", "auto, on, off"),
        ("LongCatAvatarModelLoader", "dtype", "fp8", DTYPES),
        ("LongCatAvatarModelLoader", "speakers", "three", "auto, single, multi"),
        ("LongCatAvatarVAELoader", "dtype", "int4", DTYPES),
        ("LongCatAvatarTextEncoderLoader", "dtype", "fp64", DTYPES),
        ("LongCatAvatarAudioEncoderLoader", "dtype", "half", DTYPES),
        ("LongCatAvatarPortraitEncode", "resolution", "1080p", "512x512, 480p, 720p, custom"),
        ("LongCatAvatarAudioEncode", "mode", "duet", "para, add"),
        ("LongCatAvatarVideoCombine", "frame_rate_conversion", "cubic", "nearest, blend"),
    ],
)
def test_an_unknown_choice_is_refused_naming_the_allowed_ones(
    comfy_server: ComfyServer, files, class_type: str, widget: str, value: str, allowed: str
) -> None:
    prompt = fill_workflow(api_workflow(V15), files["image"], [files["audio"]], SIZE)
    target = node_id(prompt, class_type)
    prompt[target]["inputs"][widget] = value
    errors = node_errors(comfy_server, prompt)
    assert list(errors) == [target], errors
    details = " ".join(e["details"] for e in errors[target]["errors"])
    assert f"{widget} '{value}' is not one of: {allowed}" in details, details


def _failure(server: ComfyServer, prompt: dict[str, Any]) -> dict[str, Any]:
    """Run a prompt that must fail while executing; its execution_error."""
    run = server.run(prompt, timeout=900)
    return next(data for kind, data in run.history["status"]["messages"] if kind == "execution_error")


def test_v10_with_distilled_on_is_refused_readably(comfy_server: ComfyServer, files) -> None:
    prompt = fill_workflow(api_workflow(V10), files["image"], [files["audio"]], SIZE)
    prompt[node_id(prompt, "LongCatAvatarSampler")]["inputs"]["distilled"] = "on"
    error = _failure(comfy_server, prompt)
    assert error["node_type"] == "LongCatAvatarSampler"
    assert (
        "distilled=on needs a distillation LoRA, and LongCat-Video-Avatar v1.0 has none: set distilled to off"
        in (error["exception_message"])
    )


def test_text_encode_with_our_encoder_and_a_core_clip_is_refused(comfy_server: ComfyServer) -> None:
    """Two encoders may hold different umT5 weights: the node never guesses which one to use."""
    base = comfy_server.models_dir / "longcat" / "LongCat-Video"
    tiny = TinyTextEncoder(
        base / "text_encoder", base / "tokenizer", (base / "tokenizer" / "spiece.model").read_bytes()
    )
    clip_file = write_comfy_umt5_file(tiny, comfy_server.models_dir / "text_encoders" / "choices_umt5.safetensors")
    prompt = {
        "1": {
            "class_type": "LongCatAvatarTextEncoderLoader",
            "inputs": {"text_encoder": "longcat/LongCat-Video/text_encoder", "dtype": "fp32"},
        },
        "2": {
            "class_type": "LongCatTestTinyWanClip",
            "inputs": {"file": str(clip_file), "hf_config": str(tiny.text_encoder_dir / "config.json")},
        },
        "3": {
            "class_type": "LongCatAvatarTextEncode",
            "inputs": {"prompt": "a person", "negative_prompt": "", "text_encoder": ["1", 0], "clip": ["2", 0]},
        },
        "4": probe_node("3", 0, "two_encoders"),
    }
    error = _failure(comfy_server, prompt)
    assert error["node_type"] == "LongCatAvatarTextEncode"
    assert "both a text_encoder and a clip are connected; connect only one of them" in error["exception_message"]
