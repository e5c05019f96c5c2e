"""The avatar nodes on a real ComfyUI server with tiny models: the sampler node computes exactly what a direct engine
call computes, seeds reproduce, distilled mode says what it overrides, one progress bar counts every step; Portrait
Encode sizes; Text Encode gives the same embeddings from our encoder, a ComfyUI single file and ComfyUI's CLIP."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import torch
from diffusers import AutoencoderKLWan

from pipeline.checkpoints.dit_loader import load_dit
from pipeline.sampling.mode import LORA_DISTILLATION
from pipeline.sampling.sampler import SamplerSettings, generate_video
from pipeline.vae.loader import load_wan_vae
from pipeline.vae.wan_vae import WanVAE
from support.avatar_graph import (
    add_box_masks,
    api_workflow,
    fill_workflow,
    make_portrait,
    make_speech,
    node_id,
    probe_node,
    probed_conditioning,
    read_probe,
)
from support.comfy_server import ComfyServer
from support.tiny_models import TinyTextEncoder, write_comfy_umt5_file, write_comfy_vae_file
from support.video_probe import probe

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

WORKFLOW = "longcat_avatar_v15_single_distilled"


@pytest.fixture(scope="module")
def server(comfy_server: ComfyServer) -> ComfyServer:
    """The shared server with the probe node (tests/conftest.py)."""
    return comfy_server


@pytest.fixture(scope="module")
def files(server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Uploaded portrait and speech."""
    folder = tmp_path_factory.mktemp("media")
    portrait = make_portrait(folder / "face.png")
    speech = make_speech(folder / "hello.wav", "Hello, I am a tiny avatar.")
    other = make_speech(folder / "other.wav", "And I answer you.")
    return {"image": server.upload(portrait), "audio": server.upload(speech), "audio_2": server.upload(other)}


def probed_prompt(files: dict[str, str], seed: int, tag: str) -> dict[str, Any]:
    """The v1.5 workflow with widgets the distilled mode overrides, and probes on every sampler input and output."""
    prompt = fill_workflow(api_workflow(WORKFLOW), files["image"], [files["audio"]], prefix=f"nodes/{tag}")
    sampler = node_id(prompt, "LongCatAvatarSampler")
    prompt[sampler]["inputs"].update(seed=seed, steps=25, text_guidance=4.0, audio_guidance=3.0)
    for output, (source, slot) in {"portrait": ("7", 0), "audio": ("8", 0), "text": ("9", 0)}.items():
        prompt[f"p_{output}"] = probe_node(source, slot, f"{tag}_{output}")
    prompt["p_video"] = probe_node(sampler, 0, f"{tag}_video")
    prompt["p_frames"] = probe_node(node_id(prompt, "LongCatAvatarDecode"), 0, f"{tag}_frames")
    return prompt


def run_ok(server: ComfyServer, prompt: dict[str, Any]) -> Any:
    """Run a prompt and insist it succeeded."""
    run = server.run(prompt, timeout=900)
    assert run.status == "success", f"{run.error_message()}\n{server.log_tail()}"
    return run


@pytest.fixture(scope="module")
def seed_runs(server: ComfyServer, files: dict[str, str]) -> dict[str, Any]:
    """Seed 42, seed 7, then seed 42 again (the cache cannot serve the third run: its previous one differs)."""
    return {tag: run_ok(server, probed_prompt(files, seed, tag)) for tag, seed in (("a1", 42), ("b", 7), ("a2", 42))}


def test_distilled_mode_says_what_it_overrides(server: ComfyServer, seed_runs: dict[str, Any]) -> None:
    run = seed_runs["a1"]
    prompt = probed_prompt({"image": "x", "audio": "y"}, 42, "x")
    (info,) = run.outputs(node_id(prompt, "LongCatAvatarSampler"))["text"]
    assert "distilled mode (the model carries the DMD distillation LoRA)" in info
    assert "8-step distilled schedule without guidance" in info
    assert "steps=25, text_guidance=4, audio_guidance=3 are not used" in info
    assert info.split(": ", 1)[1].split(". ")[0] in server.log_text()  # the same sentence is in the server log
    progress = [m for m in run.progress_messages() if m["node"] == node_id(prompt, "LongCatAvatarSampler")]
    assert [m["value"] for m in progress] == list(range(1, 9)) and {m["max"] for m in progress} == {8}


def test_same_seed_gives_identical_frames_and_another_seed_different_ones(server, seed_runs) -> None:
    frames = {tag: read_probe(server.output_dir, f"{tag}_frames")[0]["value"] for tag in ("a1", "b", "a2")}
    assert frames["a1"].shape == frames["b"].shape and frames["a1"].shape[0] > 25  # ~1.9 s of speech at 25 fps
    assert torch.equal(frames["a1"], frames["a2"])
    assert (frames["a1"] - frames["b"]).abs().mean() > 1e-3  # the seed changes the whole video


def test_sampler_node_latents_equal_a_direct_engine_call(server: ComfyServer, seed_runs) -> None:
    """The node's video is the engine's, bit for bit, given the node's widgets and what the loader found (the DMD
    LoRA): the engine itself turns steps 25 and guidance 4 / 3 into the distilled 8 steps without guidance."""
    video, video_scalars = read_probe(server.output_dir, "a1_video")
    longcat = server.models_dir / "longcat"
    v15 = longcat / "LongCat-Video-Avatar-1.5"
    loaded = load_dit(v15 / "base_model_int8", dtype=torch.float32, lora_path=v15 / "lora" / "dmd_lora.safetensors")
    vae = WanVAE(load_wan_vae(longcat / "LongCat-Video" / "vae"))
    settings = SamplerSettings(
        steps=25,
        text_guidance=4.0,
        audio_guidance=3.0,
        seed=42,
        distilled="auto",
        lora=loaded.lora.role,
        scheduler_dir=v15 / "scheduler",
    )
    assert loaded.lora.role == LORA_DISTILLATION and settings.mode("v1.5").steps == 8
    with torch.inference_mode():
        direct = generate_video(loaded.model, vae, "v1.5", probed_conditioning(server.output_dir, "a1"), settings)
    node_latents = [video[f"value.result.segment_latents.{i}"] for i in range(len(direct.segment_latents))]
    assert f"value.result.segment_latents.{len(direct.segment_latents)}" not in video
    for mine, theirs in zip(node_latents, direct.segment_latents, strict=True):
        assert torch.equal(mine, theirs), (mine - theirs).abs().max()
    assert torch.equal(video["value.result.frames"], direct.frames)
    assert video_scalars["value.result.fps"] == 25


@pytest.mark.parametrize(
    ("resolution", "size", "expected"),
    [("480p", (512, 512), (736, 544)), ("720p", (512, 512), (1120, 832)), ("512x512", (64, 64), (512, 512)),
     ("custom", (64, 96), (96, 64))],
)  # fmt: skip
def test_portrait_encode_sizes(server: ComfyServer, files, resolution: str, size, expected) -> None:
    """The 120x160 portrait (h/w 1.33) lands in the reference's nearest bucket, the default square, or custom."""
    prompt = {
        "1": {"class_type": "LongCatAvatarVAELoader", "inputs": {"vae": "longcat/LongCat-Video/vae", "dtype": "fp32"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": files["image"]}},
        "3": {
            "class_type": "LongCatAvatarPortraitEncode",
            "inputs": {
                "vae": ["1", 0],
                "image": ["2", 0],
                "resolution": resolution,
                "width": size[0],
                "height": size[1],
            },
        },
        "4": probe_node("3", 0, f"portrait_{resolution}"),
        "5": probe_node("3", 1, f"cropped_{resolution}"),
    }
    run_ok(server, prompt)
    portrait, scalars = read_probe(server.output_dir, f"portrait_{resolution}")
    cropped = read_probe(server.output_dir, f"cropped_{resolution}")[0]["value"]
    height, width = expected
    assert (scalars["value.source_height"], scalars["value.source_width"]) == (160, 120)
    assert portrait["value.portrait.pixels"].shape == (1, 3, 1, height, width)
    assert portrait["value.portrait.latent"].shape == (1, 16, 1, height // 8, width // 8)
    assert cropped.shape == (1, height, width, 3)
    assert torch.allclose(cropped, (portrait["value.portrait.pixels"][:, :, 0].movedim(1, -1) + 1) / 2, atol=1e-6)
    centre = cropped[0, height // 2 - 2 : height // 2 + 2, width // 2 - 2 : width // 2 + 2].mean(dim=(0, 1))
    assert centre[0] > centre[2]  # the skin-coloured face sits in the middle of the crop, not the blue background


def test_portrait_encode_refuses_sizes_that_are_not_multiples_of_16(server: ComfyServer, files) -> None:
    prompt = {
        "1": {"class_type": "LongCatAvatarVAELoader", "inputs": {"vae": "longcat/LongCat-Video/vae", "dtype": "fp32"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": files["image"]}},
        "3": {
            "class_type": "LongCatAvatarPortraitEncode",
            "inputs": {"vae": ["1", 0], "image": ["2", 0], "resolution": "custom", "width": 100, "height": 96},
        },
        "4": probe_node("3", 0, "portrait_bad"),
    }
    run = server.run(prompt, timeout=300)
    error = next(data for kind, data in run.history["status"]["messages"] if kind == "execution_error")
    assert error["node_type"] == "LongCatAvatarPortraitEncode"
    assert "multiples of 16, got 100x96" in error["exception_message"]


TEXT = "A smiling woman talks about the weather, &amp; waves   her hand."
LONG_TEXT = " ".join(["Blurry, static, overexposed, distorted face, extra fingers, subtitles."] * 40)  # > 512 tokens


def _text_prompt(source: dict, tag: str) -> dict:
    """Loader (or CLIP) -> Text Encode -> probe."""
    link = "clip" if source["class_type"] == "LongCatTestTinyWanClip" else "text_encoder"
    encode = {"prompt": TEXT, "negative_prompt": LONG_TEXT, link: ["1", 0]}
    return {"1": source, "2": {"class_type": "LongCatAvatarTextEncode", "inputs": encode}, "3": probe_node("2", 0, tag)}


def test_text_encode_is_the_same_from_folder_single_file_and_comfyui_clip(server: ComfyServer) -> None:
    base = server.models_dir / "longcat" / "LongCat-Video"
    spiece = (base / "tokenizer" / "spiece.model").read_bytes()
    tiny = TinyTextEncoder(base / "text_encoder", base / "tokenizer", spiece)
    folder = server.models_dir / "text_encoders"
    scaled = write_comfy_umt5_file(tiny, folder / "tiny_umt5_scaled.safetensors", fp8_scaled=True)
    plain = write_comfy_umt5_file(tiny, folder / "tiny_umt5.safetensors")
    loader = "LongCatAvatarTextEncoderLoader"
    sources = {
        "folder": {
            "class_type": loader,
            "inputs": {"text_encoder": "longcat/LongCat-Video/text_encoder", "dtype": "fp32"},
        },
        "single": {"class_type": loader, "inputs": {"text_encoder": plain.name, "dtype": "fp32"}},
        "fp8": {"class_type": loader, "inputs": {"text_encoder": scaled.name, "dtype": "fp32"}},
        "clip": {
            "class_type": "LongCatTestTinyWanClip",
            "inputs": {"file": str(plain), "hf_config": str(tiny.text_encoder_dir / "config.json")},
        },
    }
    got = {}
    for tag, source in sources.items():
        run_ok(server, _text_prompt(source, f"text_{tag}"))
        got[tag] = read_probe(server.output_dir, f"text_{tag}")[0]
    ours = got["folder"]
    real = int(ours["value.positive.mask"].sum())
    assert ours["value.positive.mask"].shape == (1, 512) and 10 < real < 60
    assert ours["value.positive.mask"][0, :real].all()
    assert int(ours["value.negative.mask"].sum()) == 512  # the long negative prompt is truncated as the reference does
    for tag in ("single", "fp8", "clip"):
        for side in ("positive", "negative"):
            mask = ours[f"value.{side}.mask"]
            assert torch.equal(got[tag][f"value.{side}.mask"], mask), (tag, side)
            n = int(mask.sum())
            theirs, mine = got[tag][f"value.{side}.embeds"][..., :n, :], ours[f"value.{side}.embeds"][..., :n, :]
            tolerance = 0.15 if tag == "fp8" else 1e-5  # fp8 keeps 3 mantissa bits per weight; the others are fp32
            assert (theirs - mine).norm() <= tolerance * mine.norm(), (tag, side, (theirs - mine).norm() / mine.norm())
    clip = got["clip"]["value.positive.embeds"]
    assert clip.shape == (1, 1, 512, 32)
    assert not clip[..., real:, :].any()  # ComfyUI zeroes the padding; the DiT zeroes it after projection anyway


def _queue_with_workflow(server: ComfyServer, prompt: dict[str, Any], workflow: dict[str, Any]) -> dict[str, Any]:
    """POST a prompt as the frontend does (with the UI workflow in extra_pnginfo) and wait for its history."""
    body = {"prompt": prompt, "client_id": server.client_id, "extra_data": {"extra_pnginfo": {"workflow": workflow}}}
    response = requests.post(f"{server.url}/prompt", json=body, timeout=60)
    assert response.ok, response.text
    prompt_id = response.json()["prompt_id"]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        entry = server.history(prompt_id)
        if entry.get("status", {}).get("completed") is not None and entry["status"].get("status_str"):
            return entry
        time.sleep(0.2)
    raise AssertionError(f"prompt {prompt_id} did not finish")


def test_video_output_feeds_save_video_with_a_new_file_and_the_workflow_embedded(
    server: ComfyServer, files, seed_runs, tmp_path: Path
) -> None:
    prompt = probed_prompt(files, 42, "a1")  # the seed-42 graph: everything but the last nodes comes from the cache
    combine = node_id(prompt, "LongCatAvatarVideoCombine")
    prompt[combine]["inputs"]["crf"] = 23  # a changed widget makes Video Combine write again, same file prefix
    prompt["save"] = {
        "class_type": "SaveVideo",
        "inputs": {"video": [combine, 0], "filename_prefix": "nodes/saved", "format": "auto", "codec": "auto"},
    }
    workflow = {"nodes": [{"id": 1, "type": "LongCatAvatarSampler"}], "note": "made by the test"}
    entry = _queue_with_workflow(server, prompt, workflow)
    assert entry["status"]["status_str"] == "success", entry["status"]
    (first,) = seed_runs["a1"].outputs(combine)["images"]
    (again,) = entry["outputs"][combine]["images"]
    assert first["subfolder"] == again["subfolder"] and first["filename"] != again["filename"]  # never overwritten
    assert (server.output_dir / first["subfolder"] / first["filename"]).is_file()
    ours = probe(server.fetch_output(again, tmp_path / "ours.mp4"))
    (saved_item,) = entry["outputs"]["save"]["images"]
    saved = probe(server.fetch_output(saved_item, tmp_path / "saved.mp4"))
    assert (saved.video_codec, saved.audio_codec) == ("h264", "aac")
    assert (saved.frame_count, saved.width, saved.height) == (ours.frame_count, ours.width, ours.height)
    assert json.loads(ours.tags["workflow"]) == workflow  # the UI workflow is embedded, as Save Video does
    assert json.loads(ours.tags["prompt"])[combine]["inputs"]["crf"] == 23


def _boxes_prompt(files: dict[str, str], tag: str, masks: bool, halves: bool = False) -> dict[str, Any]:
    """Two speakers in para mode; speaker regions as boxes or as the same rectangles drawn as ComfyUI MASKs."""
    prompt = fill_workflow(
        api_workflow("longcat_avatar_v15_two_speakers"), files["image"], [files["audio"], files["audio_2"]]
    )
    encode = node_id(prompt, "LongCatAvatarAudioEncode")
    boxes = {1: (20, 5, 90, 60), 2: (30, 60, 100, 115)}  # (y_min, x_min, y_max, x_max) in the 120x160 portrait
    if not masks and not halves:
        prompt[encode]["inputs"]["speaker_boxes"] = "\n".join(", ".join(map(str, b)) for b in boxes.values())
    if masks:
        add_box_masks(prompt, encode, list(boxes.values()), 120, 160)
    prompt["p_frames"] = probe_node(node_id(prompt, "LongCatAvatarDecode"), 0, f"{tag}_frames")
    return prompt


def test_speaker_boxes_and_the_same_regions_as_masks_make_the_same_video(server: ComfyServer, files) -> None:
    run_ok(server, _boxes_prompt(files, "boxes", masks=False))
    run_ok(server, _boxes_prompt(files, "masks", masks=True))
    run_ok(server, _boxes_prompt(files, "halves", masks=False, halves=True))
    boxes, masks, halves = (
        read_probe(server.output_dir, f"{t}_frames")[0]["value"] for t in ("boxes", "masks", "halves")
    )
    assert boxes.shape[0] > 25 and torch.equal(boxes, masks)
    assert (boxes - halves).abs().mean() > 1e-4  # the regions matter: the default left/right halves differ


def test_bad_speaker_boxes_are_refused_readably(server: ComfyServer, files) -> None:
    prompt = _boxes_prompt(files, "bad", masks=False)
    prompt[node_id(prompt, "LongCatAvatarAudioEncode")]["inputs"]["speaker_boxes"] = "10, 20, 30\n1, 2, 3, 4"
    run = server.run(prompt, timeout=900)
    error = next(data for kind, data in run.history["status"]["messages"] if kind == "execution_error")
    assert error["node_type"] == "LongCatAvatarAudioEncode"
    assert "speaker_boxes: '10, 20, 30' is not a box 'y_min, x_min, y_max, x_max'" in error["exception_message"]


def test_quantize_on_load_matches_the_official_int8_folder(server: ComfyServer, files, seed_runs) -> None:
    """The dense tiny v1.5 DiT quantised while loading = the official int8 folder made from it (up to bf16 rounding
    of the non-quantised tensors, which the int8 format stores in bf16)."""
    prompt = probed_prompt(files, 42, "q8")
    loader = node_id(prompt, "LongCatAvatarModelLoader")
    prompt[loader]["inputs"].update(model="longcat/LongCat-Video-Avatar-1.5/base_model", quantize_int8=True)
    run_ok(server, prompt)
    ours = read_probe(server.output_dir, "q8_video")[0]["value.result.segment_latents.0"]
    official = read_probe(server.output_dir, "a1_video")[0]["value.result.segment_latents.0"]
    dense = prompt  # the same graph without quantisation differs more: int8 rounding is visible
    dense[loader]["inputs"].update(quantize_int8=False)
    dense["p_video"]["inputs"]["name"] = "dense_video"
    run_ok(server, dense)
    plain = read_probe(server.output_dir, "dense_video")[0]["value.result.segment_latents.0"]
    to_official = (ours - official).norm() / official.norm()
    assert to_official < 0.5 * (plain - official).norm() / official.norm() and to_official < 5e-3, to_official


def test_comfyui_single_file_vae_encodes_like_the_official_folder(server: ComfyServer, files) -> None:
    official = server.models_dir / "longcat" / "LongCat-Video" / "vae"
    single = write_comfy_vae_file(
        AutoencoderKLWan.from_pretrained(str(official)), server.models_dir / "vae" / "wan_2.1_vae_tiny.safetensors"
    )
    latents = {}
    for tag, choice in (("folder", "longcat/LongCat-Video/vae"), ("single", single.name)):
        prompt = {
            "1": {"class_type": "LongCatAvatarVAELoader", "inputs": {"vae": choice, "dtype": "fp32"}},
            "2": {"class_type": "LoadImage", "inputs": {"image": files["image"]}},
            "3": {
                "class_type": "LongCatAvatarPortraitEncode",
                "inputs": {"vae": ["1", 0], "image": ["2", 0], "resolution": "custom", "width": 64, "height": 96},
            },
            "4": probe_node("3", 0, f"vae_{tag}"),
        }
        run_ok(server, prompt)
        latents[tag] = read_probe(server.output_dir, f"vae_{tag}")[0]["value.portrait.latent"]
    difference = (latents["single"] - latents["folder"]).norm() / latents["folder"].norm()
    assert difference < 1e-2, difference  # the single file is fp16 (as ComfyUI ships it); the folder fp32
