"""Cancel, bad input and missing or wrong model files on a real ComfyUI server: readable errors, the server keeps
serving, and the next prompt runs normally."""

from __future__ import annotations

import shutil
from typing import Any

import numpy as np
import pytest
import requests

from support.avatar_graph import (
    api_workflow,
    ensure_tiny_models,
    fill_workflow,
    make_portrait,
    make_speech,
    node_id,
    write_wav,
)
from support.comfy_server import ComfyServer, ComfyServerError

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

V15 = "longcat_avatar_v15_single_distilled"
V10 = "longcat_avatar_v10_single_full_guidance"
CANCEL_SIZE = (256, 256)  # 16x16 tokens per latent frame: each guided step takes long enough to interrupt mid-run


@pytest.fixture(scope="module")
def files(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny models, and uploaded good and bad media."""
    ensure_tiny_models(comfy_server.models_dir)
    folder = tmp_path_factory.mktemp("media")
    (folder / "notes.txt").write_text("This is a text file, not a picture.\n")
    return {
        "image": comfy_server.upload(make_portrait(folder / "face.png")),
        "audio": comfy_server.upload(make_speech(folder / "hi.wav", "Hi there, nice to meet you.")),
        "text": comfy_server.upload(folder / "notes.txt", name="notes.png"),
        "empty": comfy_server.upload(write_wav(folder / "empty.wav", np.zeros(0), 16000)),
    }


def _prompt(name: str, files: dict[str, str], image: str = "image", audio: str = "audio", **kw: Any) -> dict:
    return fill_workflow(api_workflow(name), files[image], [files[audio]], prefix=f"errors/{name}", **kw)


def _error(run: Any) -> dict[str, Any]:
    """The execution_error details recorded in /history."""
    return next(data for kind, data in run.history["status"]["messages"] if kind == "execution_error")


def _still_serving(server: ComfyServer, files: dict[str, str]) -> None:
    """The server answers and runs a normal prompt to the end."""
    assert requests.get(f"{server.url}/system_stats", timeout=30).ok
    run = server.run(_prompt(V15, files), timeout=900)
    assert run.status == "success", run.error_message()


def test_cancel_stops_within_one_step_and_the_next_prompt_runs(comfy_server: ComfyServer, files) -> None:
    prompt = _prompt(V10, files, size=CANCEL_SIZE)
    sampler = node_id(prompt, "LongCatAvatarSampler")
    seen: dict[str, Any] = {"after": []}

    def on_message(message: dict[str, Any], server: ComfyServer) -> None:
        if message["type"] != "progress" or message["data"]["node"] != sampler:
            return
        if "at" in seen:
            seen["after"].append(message["data"]["value"])
        else:
            seen["at"] = message["data"]["value"]
            server.interrupt()

    run = comfy_server.run(prompt, timeout=900, on_message=on_message)
    assert "at" in seen, "the sampler never reported progress"
    assert len(seen["after"]) <= 1, f"steps after Cancel: {seen['after']}"
    kinds = [kind for kind, _ in run.history["status"]["messages"]]
    assert "execution_interrupted" in kinds and "execution_success" not in kinds, kinds
    interrupted = dict(run.history["status"]["messages"])["execution_interrupted"]
    assert interrupted["node_type"] == "LongCatAvatarSampler"
    assert run.messages[-1]["type"] == "execution_interrupted"
    assert "LongCat Avatar: cancelled" in comfy_server.log_text()
    _still_serving(comfy_server, files)


def test_a_text_file_as_image_gives_a_readable_error(comfy_server: ComfyServer, files) -> None:
    run = comfy_server.run(_prompt(V15, files, image="text"), timeout=900)
    error = _error(run)
    assert run.status == "error" and error["node_type"] == "LoadImage"
    assert "cannot identify image file" in error["exception_message"]
    _still_serving(comfy_server, files)


def test_empty_audio_gives_a_readable_error(comfy_server: ComfyServer, files) -> None:
    run = comfy_server.run(_prompt(V15, files, audio="empty"), timeout=900)  # an empty WAV file
    assert run.status == "error" and _error(run)["node_type"] == "LoadAudio"
    assert "No audio frames" in _error(run)["exception_message"]
    prompt = _prompt(V15, files)  # an empty AUDIO reaching our node (e.g. from another pack)
    prompt[node_id(prompt, "LoadAudio")] = {
        "class_type": "EmptyAudio",
        "inputs": {"duration": 0.0, "sample_rate": 16000, "channels": 1},
    }
    run = comfy_server.run(prompt, timeout=900)
    error = _error(run)
    assert error["node_type"] == "LongCatAvatarAudioEncode"
    assert error["exception_message"].strip() == "LongCat Avatar Audio Encode: AUDIO is empty (0 samples)"
    _still_serving(comfy_server, files)


def test_a_missing_model_names_file_folder_and_download_page(comfy_server: ComfyServer, files) -> None:
    prompt = _prompt(V15, files)
    prompt[node_id(prompt, "LongCatAvatarModelLoader")]["inputs"]["model"] = "longcat_avatar_dit.safetensors"
    with pytest.raises(ComfyServerError) as refused:
        comfy_server.queue(prompt)
    message = str(refused.value)
    assert "longcat_avatar_dit.safetensors" in message and "not found in the diffusion_models folder" in message
    assert str(comfy_server.models_dir / "diffusion_models") in message
    assert "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar-1.5" in message


def test_a_wrong_model_file_names_file_folder_and_download_page(comfy_server: ComfyServer, files) -> None:
    folder = comfy_server.models_dir / "diffusion_models"
    folder.mkdir(parents=True, exist_ok=True)
    vae = comfy_server.models_dir / "longcat" / "LongCat-Video" / "vae" / "diffusion_pytorch_model.safetensors"
    wrong = folder / "not_a_dit.safetensors"
    shutil.copy(vae, wrong)  # a real safetensors file, but a VAE
    try:
        prompt = _prompt(V15, files)
        prompt[node_id(prompt, "LongCatAvatarModelLoader")]["inputs"]["model"] = wrong.name
        run = comfy_server.run(prompt, timeout=900)
    finally:
        wrong.unlink()  # other tests list this folder
    error = _error(run)
    assert error["node_type"] == "LongCatAvatarModelLoader"
    message = error["exception_message"]
    assert "Could not load the avatar model (DiT) 'not_a_dit.safetensors'" in message
    assert "diffusion_models folder" in message and "https://huggingface.co/meituan-longcat/" in message
    _still_serving(comfy_server, files)


def test_audio_encoder_of_the_other_version_is_refused_with_the_one_needed(comfy_server: ComfyServer, files) -> None:
    prompt = _prompt(V10, files)
    loader = node_id(prompt, "LongCatAvatarAudioEncoderLoader")
    prompt[loader]["inputs"]["audio_encoder"] = "longcat/LongCat-Video-Avatar-1.5/whisper-large-v3"
    run = comfy_server.run(prompt, timeout=900)
    error = _error(run)
    assert error["node_type"] == "LongCatAvatarSampler"
    assert "encoded for v1.5 but the model is v1.0: load chinese-wav2vec2-base" in error["exception_message"]


def test_a_missing_official_folder_names_the_layout_and_download_page(comfy_server: ComfyServer, files) -> None:
    multi = comfy_server.models_dir / "longcat" / "LongCat-Video-Avatar" / "avatar_multi"
    target = multi.readlink()
    multi.unlink()  # as if the user had not downloaded avatar_multi/
    try:
        prompt = _prompt(V10, files)
        prompt[node_id(prompt, "LongCatAvatarModelLoader")]["inputs"]["model"] = (
            "longcat/LongCat-Video-Avatar/avatar_multi"
        )
        with pytest.raises(ComfyServerError) as refused:
            comfy_server.queue(prompt)
    finally:
        multi.symlink_to(target, target_is_directory=True)
    message = str(refused.value)
    assert "expected the file LongCat-Video-Avatar/avatar_multi/config.json" in message
    assert str(comfy_server.models_dir / "longcat") in message
    assert "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar " in message


def test_loaders_list_official_layouts_and_standard_folders(comfy_server: ComfyServer, files) -> None:
    folder = comfy_server.models_dir / "loras"
    folder.mkdir(parents=True, exist_ok=True)
    lora = comfy_server.models_dir / "longcat" / "LongCat-Video-Avatar-1.5" / "lora" / "dmd_lora.safetensors"
    extra = folder / "my_distill_lora.safetensors"
    shutil.copy(lora, extra)
    try:
        info = comfy_server.get_json("/object_info")
    finally:
        extra.unlink()  # other tests list this folder

    def options(node: str, name: str) -> list[str]:
        return info[node]["input"]["required"][name][1]["options"]

    v15, v10 = "longcat/LongCat-Video-Avatar-1.5", "longcat/LongCat-Video-Avatar"
    dits = options("LongCatAvatarModelLoader", "model")
    assert {f"{v15}/base_model", f"{v15}/base_model_int8", f"{v10}/avatar_single", f"{v10}/avatar_multi"} <= set(dits)
    loras = options("LongCatAvatarModelLoader", "lora")
    assert loras[0] == "none" and f"{v15}/lora/dmd_lora.safetensors" in loras and "my_distill_lora.safetensors" in loras
    audio = options("LongCatAvatarAudioEncoderLoader", "audio_encoder")
    assert {f"{v15}/whisper-large-v3", f"{v10}/chinese-wav2vec2-base"} <= set(audio)
    assert "longcat/LongCat-Video/vae" in options("LongCatAvatarVAELoader", "vae")
    assert "longcat/LongCat-Video/text_encoder" in options("LongCatAvatarTextEncoderLoader", "text_encoder")
