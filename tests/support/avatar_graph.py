"""Helpers for running the pack's graphs on a real ComfyUI server with tiny models.

- `ensure_tiny_models(models_dir)`: the official `models/longcat/...` layouts with tiny models (the refvec DiTs and
  audio encoders, the Whisper with 3 s windows; a tiny VAE and umT5), plus the v1.5 int8 DiT, its DMD LoRA, the v1.0
  multi-speaker folder and a tiny stand-in for each repository's vocal_separator/Kim_Vocal_2.onnx.
- `make_portrait`, `make_speech`: test media made here (a drawn face, espeak-ng speech).
- `api_workflow`, `fill_workflow`: the example API workflows with the test's files and a small resolution.
- `install_probe`, `read_probe`: a test-only ComfyUI node that dumps any node output's tensors to a file, so tests
  can compare what flowed through the graph with direct engine calls; `probed_conditioning` rebuilds the sampler's
  inputs from those dumps. The same custom node folder holds tiny builds of ComfyUI's own Wan text encoder (CLIP) and
  audio encoder (AUDIO_ENCODER), whose core loaders hard-code the full sizes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from pipeline.audio.types import AudioFeatures
from pipeline.model_catalogue import VOCAL_SEPARATOR, WHISPER
from pipeline.sampling.sampler import VideoConditioning
from pipeline.text.encoder import TextEmbedding
from support.comfy_server import GC_FREEZE_SOURCE
from support.refvec import refvec_roots
from support.tiny_mdx import build_tiny_mdx
from support.tiny_models import build_official_layout, shorten_whisper_window

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_DIR = REPO_ROOT / "workflows"
TEST_SIZE = (64, 96)  # (width, height): multiples of 16, tiny latents (8x12), fast on 2 CPU cores
PROBE_FOLDER = "longcat_test_probe"


def ensure_tiny_models(models_dir: Path) -> Path:
    """Build the tiny official layouts once in `models_dir` (idempotent); returns models_dir/longcat."""
    longcat = models_dir / "longcat"
    marker = longcat / ".tiny-models-ready"
    if marker.is_file():
        return longcat
    refvec = refvec_roots()[0]
    layout = build_official_layout(models_dir, refvec)
    shorten_whisper_window(longcat / WHISPER.relpath)
    links = {
        layout.avatar_v15 / "base_model_int8": refvec / "int8_v1.5" / "base_model_int8",
        layout.avatar_v15 / "lora" / "dmd_lora.safetensors": refvec / "lora_v1.5" / "dmd_lora.safetensors",
        layout.avatar_v10 / "avatar_multi": refvec / "dit_v1.0",
    }
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(target, target_is_directory=target.is_dir())
    for separator in VOCAL_SEPARATOR.official:
        build_tiny_mdx(longcat / separator.relpath)
    marker.write_text("tiny models for tests\n")
    return longcat


def make_portrait(path: Path, width: int = 120, height: int = 160) -> Path:
    """A drawn face (skin oval, eyes, mouth) on a plain background, saved as PNG."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (90, 120, 160))
    draw = ImageDraw.Draw(image)
    w, h = width, height
    draw.ellipse((w * 0.25, h * 0.18, w * 0.75, h * 0.78), fill=(230, 190, 160))
    for x in (0.4, 0.6):
        draw.ellipse((w * (x - 0.04), h * 0.38, w * (x + 0.04), h * 0.44), fill=(30, 30, 30))
    draw.rectangle((w * 0.42, h * 0.6, w * 0.58, h * 0.63), fill=(150, 50, 50))
    image.save(path)
    return path


def make_speech(path: Path, text: str) -> Path:
    """Real (synthetic-voice) speech from espeak-ng, as a WAV."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (bash .ci/run installs it)")
    subprocess.run([espeak, "-w", str(path), text], check=True, capture_output=True)
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """A mono 16-bit WAV (also with zero samples)."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return path


def wav_duration(path: Path) -> float:
    """Duration in seconds of a WAV file."""
    with wave.open(str(path), "rb") as handle:
        return handle.getnframes() / handle.getframerate()


def api_workflows() -> dict[str, Path]:
    """Every API-format example workflow (`workflows/*_api.json`), by name."""
    return {p.name.removesuffix("_api.json"): p for p in sorted(WORKFLOW_DIR.glob("*_api.json"))}


def ui_workflows() -> dict[str, Path]:
    """Every UI-format example workflow (`workflows/*.json` that is not `*_api.json`), by name."""
    return {p.stem: p for p in sorted(WORKFLOW_DIR.glob("*.json")) if not p.name.endswith("_api.json")}


def api_workflow(name: str) -> dict[str, Any]:
    """One API-format workflow as a dict."""
    return json.loads((WORKFLOW_DIR / f"{name}_api.json").read_text())


def _id_order(key: str) -> tuple[bool, int, str]:
    """Numeric node ids in numeric order, then any others (e.g. added probes) by name."""
    return (not key.isdigit(), int(key) if key.isdigit() else 0, key)


def nodes_of(prompt: dict[str, Any], class_type: str) -> list[dict[str, Any]]:
    """The nodes of a prompt with this class_type, in node-id order."""
    return [prompt[k] for k in sorted(prompt, key=_id_order) if prompt[k]["class_type"] == class_type]


def node_id(prompt: dict[str, Any], class_type: str) -> str:
    """The id of the (first) node with this class_type."""
    return next(k for k in sorted(prompt, key=_id_order) if prompt[k]["class_type"] == class_type)


def fill_workflow(
    prompt: dict[str, Any], image: str, audios: list[str], size: tuple[int, int] = TEST_SIZE, prefix: str = ""
) -> dict[str, Any]:
    """Point LoadImage/LoadAudio at the uploaded files and generate at a small custom size."""
    for load in nodes_of(prompt, "LoadImage"):
        load["inputs"]["image"] = image
    for load, name in zip(nodes_of(prompt, "LoadAudio"), audios, strict=True):
        load["inputs"]["audio"] = name
    for portrait in nodes_of(prompt, "LongCatAvatarPortraitEncode"):
        portrait["inputs"].update(resolution="custom", width=size[0], height=size[1])
    if prefix:
        for combine in nodes_of(prompt, "LongCatAvatarVideoCombine"):
            combine["inputs"]["filename_prefix"] = prefix
    return prompt


def add_box_masks(prompt: dict[str, Any], encode: str, boxes: list[list[float]], width: int, height: int) -> None:
    """Connect Audio Encode's speaker masks to core MASK nodes (SolidMask + MaskComposite) drawing `boxes`.

    `boxes` are (y_min, x_min, y_max, x_max) in the `width` x `height` portrait, speaker 1 first.
    """
    for person, (y0, x0, y1, x1) in enumerate((tuple(round(v) for v in b) for b in boxes), start=1):
        prompt[f"canvas{person}"] = {
            "class_type": "SolidMask",
            "inputs": {"value": 0.0, "width": width, "height": height},
        }
        prompt[f"box{person}"] = {
            "class_type": "SolidMask",
            "inputs": {"value": 1.0, "width": x1 - x0, "height": y1 - y0},
        }
        prompt[f"mask{person}"] = {
            "class_type": "MaskComposite",
            "inputs": {"destination": [f"canvas{person}", 0], "source": [f"box{person}", 0], "x": x0, "y": y0,
                       "operation": "add"},
        }  # fmt: skip
        prompt[encode]["inputs"][f"speaker_{person}_mask"] = [f"mask{person}", 0]


PROBE_SOURCE = '''
"""Test-only ComfyUI node: dumps every tensor reachable from its input (dataclasses, dicts, lists) to a file."""
import dataclasses, json, os
import folder_paths, torch
from safetensors.torch import save_file


def _walk(value, name, tensors, scalars):
    if isinstance(value, torch.Tensor):
        tensors[name] = value.detach().to("cpu").contiguous().clone()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _walk(getattr(value, field.name), f"{name}.{field.name}", tensors, scalars)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, f"{name}.{key}", tensors, scalars)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(item, f"{name}.{index}", tensors, scalars)
    elif isinstance(value, (int, float, str, bool)) or value is None:
        scalars[name] = value


class LongCatTestProbe:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*", {}), "name": ("STRING", {"default": "probe"})}}

    RETURN_TYPES = ()
    FUNCTION = "dump"
    OUTPUT_NODE = True
    CATEGORY = "testing"

    @classmethod
    def VALIDATE_INPUTS(cls, input_types):
        return True

    def dump(self, value, name):
        tensors, scalars = {}, {}
        _walk(value, "value", tensors, scalars)
        folder = os.path.join(folder_paths.get_output_directory(), "probe")
        os.makedirs(folder, exist_ok=True)
        save_file(tensors, os.path.join(folder, name + ".safetensors"), metadata={"scalars": json.dumps(scalars)})
        return {"ui": {"probe": [name]}}


class LongCatTestTinyWanClip:
    """ComfyUI's own Wan text-encoder classes (SDClipModel + T5 + WanT5Tokenizer) at a tiny size, from a single file."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"file": ("STRING", {}), "hf_config": ("STRING", {})}}

    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"
    CATEGORY = "testing"

    def load(self, file, hf_config):
        import comfy.sd, comfy.sd1_clip, comfy.text_encoders.t5, comfy.text_encoders.wan, comfy.utils

        hf = json.load(open(hf_config))
        keys = ("d_ff", "d_kv", "d_model", "num_heads", "num_layers", "vocab_size", "relative_attention_num_buckets")
        config = {key: hf[key] for key in keys}
        config.update(dense_act_fn="gelu_pytorch_tanh", is_gated_act=True, model_type="umt5")
        config_path = os.path.join(folder_paths.get_temp_directory(), "tiny_umt5_config.json")
        os.makedirs(os.path.dirname(config_path), exist_ok=True)
        json.dump(config, open(config_path, "w"))

        class TinyUMT5(comfy.sd1_clip.SDClipModel):
            def __init__(self, device="cpu", layer="last", layer_idx=None, dtype=None, model_options={}):
                super().__init__(device=device, layer=layer, layer_idx=layer_idx, textmodel_json_config=config_path,
                                 dtype=dtype, special_tokens={"end": 1, "pad": 0},
                                 model_class=comfy.text_encoders.t5.T5, enable_attention_masks=True,
                                 zero_out_masked=True, model_options=model_options)

        class TinyWan(comfy.sd1_clip.SD1ClipModel):
            def __init__(self, device="cpu", dtype=None, model_options={}, **kwargs):
                super().__init__(device=device, dtype=dtype, model_options=model_options, name="umt5xxl",
                                 clip_model=TinyUMT5, **kwargs)

        class Target:
            params = {}
            clip = TinyWan
            tokenizer = comfy.text_encoders.wan.WanT5Tokenizer

        state = comfy.utils.load_torch_file(file, safe_load=True)
        clip = comfy.sd.CLIP(Target, tokenizer_data={"spiece_model": state.pop("spiece_model")},
                             model_options={"dtype": torch.float32})
        missing, unexpected = clip.load_sd(state)
        assert not [k for k in missing if "embed_tokens" not in k], missing
        return (clip,)


class LongCatTestTinyCoreAudioEncoder:
    """ComfyUI's own AudioEncoderModel (AUDIO_ENCODER) at a tiny size, loaded from a file as its loader loads one."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"file": ("STRING", {}), "config": ("STRING", {}), "prefix": ("STRING", {})}}

    RETURN_TYPES = ("AUDIO_ENCODER",)
    FUNCTION = "load"
    CATEGORY = "testing"

    def load(self, file, config, prefix):
        import comfy.audio_encoders.audio_encoders, comfy.utils

        encoder = comfy.audio_encoders.audio_encoders.AudioEncoderModel(json.loads(config))
        state = comfy.utils.state_dict_prefix_replace(comfy.utils.load_torch_file(file, safe_load=True), {prefix: ""})
        missing, unexpected = encoder.load_sd(state)
        assert not unexpected and all(k.startswith("feature_extractor.mel_spectrogram.") for k in missing), missing
        return (encoder,)


NODE_CLASS_MAPPINGS = {
    "LongCatTestProbe": LongCatTestProbe,
    "LongCatTestTinyWanClip": LongCatTestTinyWanClip,
    "LongCatTestTinyCoreAudioEncoder": LongCatTestTinyCoreAudioEncoder,
}
'''


def install_probe(base_dir: Path) -> None:
    """Put the probe node into a (not yet started) server's custom_nodes."""
    folder = base_dir / "custom_nodes" / PROBE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text(PROBE_SOURCE + GC_FREEZE_SOURCE)


def probe_node(source: str, output: int, name: str) -> dict[str, Any]:
    """An API-format probe node dumping output `output` of node `source` as `name`."""
    return {"class_type": "LongCatTestProbe", "inputs": {"value": [source, output], "name": name}}


def read_probe(output_dir: Path, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, scalars) a probe wrote."""
    from safetensors import safe_open

    path = output_dir / "probe" / f"{name}.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        scalars = json.loads(handle.metadata()["scalars"])
    return load_file(str(path)), scalars


def probed_conditioning(output_dir: Path, tag: str) -> VideoConditioning:
    """What a probed sampler received (probes `<tag>_portrait`, `_audio`, `_text`): pixels and latent, audio, prompts."""
    portrait = read_probe(output_dir, f"{tag}_portrait")[0]
    audio, scalars = read_probe(output_dir, f"{tag}_audio")
    text = read_probe(output_dir, f"{tag}_text")[0]
    scalar = {k.removeprefix("value.features."): v for k, v in scalars.items()}
    names = ("version", "fps", "stride", "duration_s", "num_speakers", "source_duration_s")
    features = AudioFeatures(features=audio["value.features.features"], **{n: scalar[n] for n in names})
    pixels = portrait["value.portrait.pixels"]
    return VideoConditioning(
        text=TextEmbedding(text["value.positive.embeds"], text["value.positive.mask"]),
        negative=TextEmbedding(text["value.negative.embeds"], text["value.negative.mask"]),
        audio=features,
        height=pixels.shape[-2],
        width=pixels.shape[-1],
        image=pixels,
        image_latent=portrait["value.portrait.latent"],
    )
