"""Every node phase asks ComfyUI's memory manager for the estimator's figures of its own shapes.

The pack's real nodes run in-process on the CPU (ComfyUI imported, the pack as a package): the four loader nodes on
the tiny official layout (ComfyUI's folder table pointed at it), Text Encode, Audio Encode, Portrait Encode, the
Sampler over two segments and Decode with a second VAE. A spy wraps `comfy.model_management.load_models_gpu`,
records each call's patchers and figures and runs the real function. The expected figures are computed here from the
run's shapes and the models' config.json files through pipeline/memory.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import UMT5EncoderModel

from pipeline import model_catalogue as catalogue
from pipeline.audio.types import ENCODER_SAMPLE_RATE
from pipeline.dit.config import DiTConfig
from pipeline.memory import phases
from pipeline.memory.estimate import ModelConfigs, VideoShape, memory_required, minimum_memory_required
from pipeline.sampling.segments import OVERLAP_FRAMES, SEGMENT_FRAMES
from pipeline.text.prompt import DEFAULT_NEGATIVE_PROMPT, MAX_TEXT_TOKENS
from support.audio_helpers import as_audio, speech_like
from support.avatar_graph import TEST_SIZE, ensure_tiny_models
from support.comfy_inprocess import comfy, pack

# Half the graph tests' size: latents 4x6, six DiT tokens per frame; the tiny VAE's decodes of 93-frame segments
# dominate the run, and their cost grows with the pixels.
WIDTH, HEIGHT = (side // 2 for side in TEST_SIZE)
SECONDS = 4.0  # 100 frames at v1.5's 25 fps: one 93-frame segment and a continuation that keeps 7 new frames
DTYPE = "fp32"  # every loader's dtype widget; activations are float32
ACT_BYTES = torch.float32.itemsize
PROMPT = "A woman with long hair speaks in a bright studio; she smiles and nods while she explains something."


@dataclass(frozen=True)
class Call:
    """One `load_models_gpu` call: the patchers it was given and the two figures."""

    patchers: tuple[Any, ...]
    memory_required: int
    minimum_memory_required: int

    def same_patchers(self, *expected: Any) -> bool:
        """True when the call got exactly these patcher objects, in this order."""
        return len(self.patchers) == len(expected) and all(a is b for a, b in zip(self.patchers, expected, strict=True))


class LoadSpy:
    """Records every `load_models_gpu` call, then lets ComfyUI's own function do the loading."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real, self.calls = real, []
        self.signature = inspect.signature(real)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        self.calls.append(Call(tuple(given["models"]), given["memory_required"], given["minimum_memory_required"]))
        return self.real(*args, **kwargs)

    def take(self) -> list[Call]:
        """The calls since the last take."""
        calls, self.calls = self.calls, []
        return calls


@dataclass
class Run:
    """The graph's node outputs and the `load_models_gpu` calls each node made."""

    calls: dict[str, list[Call]]
    outputs: dict[str, Any]
    configs: ModelConfigs
    audio: dict[str, Any]


def read_json(path: Path) -> dict[str, Any]:
    """A config.json as a mapping."""
    return json.loads(path.read_text())


def layout_configs(longcat: Path) -> ModelConfigs:
    """The four models' configs as their files in the tiny layout give them (not as the loaders report them)."""
    folder = {entry: longcat / entry.relpath for entry in (catalogue.DIT_V15_BF16, catalogue.WAN_VAE)}
    return ModelConfigs(
        dit=DiTConfig.from_dict(read_json(folder[catalogue.DIT_V15_BF16] / "config.json")),
        vae=read_json(folder[catalogue.WAN_VAE] / "config.json"),
        text=read_json(longcat / catalogue.UMT5.relpath / "config.json"),
        audio=read_json(longcat / catalogue.WHISPER.relpath / "config.json"),
    )


def portrait_image() -> torch.Tensor:
    """An IMAGE [1, H, W, 3] at the graph tests' size, twice the generation size (Portrait Encode resizes it)."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, TEST_SIZE[1], TEST_SIZE[0], 3, generator=generator)


def run_graph(spy: LoadSpy, audio: dict[str, Any]) -> tuple[dict[str, list[Call]], dict[str, Any]]:
    """Loaders -> Text Encode (twice) -> Audio Encode -> Portrait Encode -> Sampler -> Decode, in-process."""
    loaders = pack("nodes.loaders")
    nodes = {name: pack(f"nodes.{name}") for name in ("text_encode", "audio_encode", "portrait_encode", "decode")}
    sampler = pack("nodes.sampler")
    model = loaders.AvatarModelLoader.execute(catalogue.DIT_V15_BF16.choice, "auto", DTYPE, "none", 1.0, False).result[
        0
    ]
    vae = loaders.VAELoader.execute(catalogue.WAN_VAE.choice, DTYPE).result[0]
    other_vae = loaders.VAELoader.execute(catalogue.WAN_VAE.choice, DTYPE).result[0]
    text_encoder = loaders.TextEncoderLoader.execute(catalogue.UMT5.choice, DTYPE).result[0]
    audio_encoder = loaders.AudioEncoderLoader.execute(catalogue.WHISPER.choice, DTYPE).result[0]
    spy.take()  # loaders only build models: any load they asked for is not a phase
    out: dict[str, Any] = {"model": model, "vae": vae, "other_vae": other_vae, "audio_encoder": audio_encoder}
    calls: dict[str, list[Call]] = {}
    encode_text = nodes["text_encode"].TextEncode.execute
    out["text"], calls["text"] = encode_text(PROMPT, DEFAULT_NEGATIVE_PROMPT, text_encoder).result[0], spy.take()
    fresh = loaders.TextEncoderLoader.execute(catalogue.UMT5.choice, DTYPE).result[0]
    out["cached_text"], calls["cached_text"] = encode_text(PROMPT, DEFAULT_NEGATIVE_PROMPT, fresh).result[0], spy.take()
    encode_audio = nodes["audio_encode"].AudioEncode.execute
    out["audio"] = encode_audio(audio_encoder, audio, "para", "", "", 0).result[0]
    calls["audio"] = spy.take()
    encode_portrait = nodes["portrait_encode"].PortraitEncode.execute
    out["portrait"] = encode_portrait(vae, "custom", WIDTH, HEIGHT, portrait_image()).result[0]
    calls["portrait"] = spy.take()
    # one step with text guidance: CFG batches the prompts, so the segment shapes carry guidance
    out["video"] = sampler.AvatarSampler.execute(
        model, vae, out["portrait"], out["audio"], out["text"], 1, 4.0, 1.0, 0.0, 42, 10, 3, "off"
    ).result[0]
    calls["sampler"] = spy.take()
    out["frames"] = nodes["decode"].Decode.execute(other_vae, out["video"], False).result[0]
    calls["decode"] = spy.take()
    return calls, out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The whole graph on the tiny layout with the spy in place; ComfyUI's tables are restored afterwards."""
    tmp = tmp_path_factory.mktemp("phases")
    longcat = ensure_tiny_models(tmp / "models")
    mm = comfy().model_management
    import folder_paths

    audio = as_audio(speech_like(SECONDS), rate=ENCODER_SAMPLE_RATE)
    with pytest.MonkeyPatch.context() as patch:
        folders = dict(folder_paths.folder_names_and_paths)  # this module's own table: nothing leaks out
        folders[catalogue.LONGCAT_FOLDER] = ([str(longcat)], set())
        patch.setattr(folder_paths, "folder_names_and_paths", folders)
        patch.setattr(folder_paths, "filename_list_cache", {})
        patch.setattr(folder_paths, "user_directory", str(tmp / "user"))  # an empty prompt-embedding cache
        spy = LoadSpy(mm.load_models_gpu)
        patch.setattr(mm, "load_models_gpu", spy)
        calls, outputs = run_graph(spy, audio)
    return Run(calls, outputs, layout_configs(longcat), audio)


def figures(configs: ModelConfigs, shape: VideoShape, phase: str) -> tuple[int, int]:
    """The estimator's (memory_required, minimum_memory_required) of `phase` at `shape`."""
    return memory_required(configs, shape, phase), minimum_memory_required(configs, shape, phase)


def got(call: Call) -> tuple[int, int]:
    """A call's two figures."""
    return call.memory_required, call.minimum_memory_required


def segment_shape() -> VideoShape:
    """The sampler's run: the portrait's size, padded prompts, default segments, text guidance, one speaker."""
    return VideoShape(
        HEIGHT, WIDTH, MAX_TEXT_TOKENS, SEGMENT_FRAMES, OVERLAP_FRAMES, guidance=True, act_bytes=ACT_BYTES
    )


def test_estimator_figures_for_each_text_encode_load(run: Run) -> None:
    """Prompt and negative prompt each load the umT5 patcher with the estimator's figures for 512 tokens."""
    mm = comfy().model_management
    expected = figures(run.configs, VideoShape(0, 0, MAX_TEXT_TOKENS, act_bytes=ACT_BYTES), phases.TEXT_ENCODE)
    calls = run.calls["text"]
    assert [got(c) for c in calls] == [expected, expected] and expected[0] > 0
    patcher = calls[0].patchers[0]
    assert all(c.same_patchers(patcher) for c in calls)
    assert isinstance(patcher.model.model, UMT5EncoderModel) and patcher.load_device == mm.text_encoder_device()


def test_estimator_cached_prompt_loads_no_text_encoder(run: Run) -> None:
    """A second Text Encode of the same prompts (a new loader, the disk cache warm) makes no load at all."""
    assert run.calls["cached_text"] == []
    first, again = run.outputs["text"], run.outputs["cached_text"]
    assert torch.equal(first.positive.embeds, again.positive.embeds)
    assert torch.equal(first.negative.embeds, again.negative.embeds)


def test_estimator_figures_for_audio_encode(run: Run) -> None:
    """Audio Encode loads its encoder's patcher with the estimator's figures for this clip."""
    waveform, rate = run.audio["waveform"], run.audio["sample_rate"]
    samples = int(waveform.shape[-1] / rate * ENCODER_SAMPLE_RATE)
    shape = VideoShape(0, 0, 0, act_bytes=ACT_BYTES, audio_samples=samples)
    (call,) = run.calls["audio"]
    assert call.same_patchers(run.outputs["audio_encoder"].patcher)
    assert got(call) == figures(run.configs, shape, phases.AUDIO_ENCODE)


def test_estimator_figures_for_portrait_encode(run: Run) -> None:
    """Portrait Encode loads the VAE's patcher with the estimator's figures for one frame at the generation size."""
    (call,) = run.calls["portrait"]
    assert call.same_patchers(run.outputs["vae"].patcher)
    assert got(call) == figures(run.configs, VideoShape(HEIGHT, WIDTH, 0, act_bytes=ACT_BYTES), phases.PORTRAIT_ENCODE)


def test_estimator_figures_for_every_segment_and_its_decode(run: Run) -> None:
    """The sampler loads DiT and VAE before each segment (first, then each continuation) and the VAE before each
    decode, each time with the estimator's figures for the run's shapes."""
    dit, vae = run.outputs["model"].patcher, run.outputs["vae"].patcher
    segments = run.outputs["video"].result.plan.num_segments
    assert segments >= 2
    shape = segment_shape()
    first, later, decode = (figures(run.configs, shape, p) for p in phases.SEGMENT_PHASES + (phases.DECODE,))
    assert len({first, later, decode}) == 3  # the phases are told apart by their figures
    assert later[0] > later[1]  # KV cache on the host lowers the minimum: a swapped minimum shows
    expected = [(first, (dit, vae)), (decode, (vae,))] + [(later, (dit, vae)), (decode, (vae,))] * (segments - 1)
    calls = run.calls["sampler"]
    assert [got(c) for c in calls] == [figures_ for figures_, _ in expected]
    assert all(c.same_patchers(*patchers) for c, (_, patchers) in zip(calls, expected, strict=True))


def test_estimator_figures_for_decode_with_another_vae(run: Run) -> None:
    """Decode with a VAE other than the sampler's loads that VAE with the decode figures for the video's size."""
    (call,) = run.calls["decode"]
    assert call.same_patchers(run.outputs["other_vae"].patcher)
    assert got(call) == figures(run.configs, VideoShape(HEIGHT, WIDTH, 0, act_bytes=ACT_BYTES), phases.DECODE)
    frames = run.outputs["frames"]
    assert frames.shape[1:] == (HEIGHT, WIDTH, 3) and np.isfinite(frames.numpy()).all()
