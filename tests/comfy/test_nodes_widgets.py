"""Every sampler and model-loader widget reaches the engine, in full-guidance mode over two segments.

One graph runs with every widget off its default (shift, steps, text and audio guidance, ref_img_index,
mask_frame_range, a style LoRA with lora_strength and merge_lora, speakers, dtype); its video equals the engine's
`generate_video` called directly with the same settings, bit for bit. The engine's segments then move when any one
of those settings moves, so a widget the node dropped or replaced could not give the same video: together the two
prove each widget reaches the engine. Where a widget must not change the video, the test says why and checks that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest
import torch

from pipeline.checkpoints.dit_loader import LoadedDiT, load_dit
from pipeline.checkpoints.lora import distillation_tensor_set, lora_key
from pipeline.dit.config import DiTConfig
from pipeline.dit.model import LongCatAvatarDiT
from pipeline.sampling.mode import LORA_OTHER
from pipeline.sampling.noise import draw_noise, latent_shape, make_generator
from pipeline.sampling.sampler import (
    GeneratedVideo,
    SamplerSettings,
    SegmentSampler,
    VideoConditioning,
    generate_video,
)
from pipeline.vae.loader import load_wan_vae
from pipeline.vae.wan_vae import WanVAE
from support.avatar_graph import (
    api_workflow,
    fill_workflow,
    make_portrait,
    make_speech,
    node_id,
    probe_node,
    probed_conditioning,
    read_probe,
    wav_duration,
)
from support.comfy_server import ComfyServer
from support.dit_tiny import rel_l2, write_random_lora

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

WORKFLOW = "longcat_avatar_v15_single_distilled"
V15 = "longcat/LongCat-Video-Avatar-1.5"
SIZE = (32, 32)  # 4x4 latents: a two-segment full-guidance run costs seconds of model time on CPU
SEGMENT_SECONDS = 3.72  # 93 frames at 25 fps: longer speech needs a second segment
SPEECH = "Hello, I am a tiny avatar. I keep on talking for a little while, so that my video needs a second segment."
STYLE_LORA = "longcat_test_style_lora.safetensors"  # a LoRA that is not the DMD one: auto keeps full sampling
STYLE_RANK = 8
STYLE_TARGETS = ("attn.proj", "ffn.w2")
DMD_COPY = "longcat_test_renamed_dmd_lora.safetensors"  # the DMD tensor set under another name
SAMPLER = {  # every sampler widget off its default (25 steps, 4 / 3 guidance, shift 0, 10, 3)
    "steps": 2,
    "text_guidance": 2.5,
    "audio_guidance": 2.0,
    "shift": 5.0,
    "ref_img_index": 12,  # with 2 the masked frames 6..10 of a continuation fit inside it (otherwise none are)
    "mask_frame_range": 2,
    "seed": 42,
    "distilled": "auto",
}
LOADER = {  # every loader widget off its default (auto speakers and dtype, strength 1, on-the-fly LoRA)
    "model": f"{V15}/base_model",
    "lora": STYLE_LORA,
    "lora_strength": 0.7,
    "merge_lora": True,
    "speakers": "single",
    "dtype": "bf16",
}


def tiny_v15_meta(server: ComfyServer) -> LongCatAvatarDiT:
    """The tiny v1.5 DiT's structure (no weights), for LoRA shapes."""
    config = DiTConfig.from_dict(
        json.loads(
            (server.models_dir / "longcat" / "LongCat-Video-Avatar-1.5" / "base_model" / "config.json").read_text()
        )
    )
    return LongCatAvatarDiT(config, device="meta")


@pytest.fixture(scope="module")
def files(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Portrait, two-segment speech, a style LoRA and a renamed copy of the DMD tensor set in models/loras/."""
    folder = tmp_path_factory.mktemp("widgets")
    speech = make_speech(folder / "long.wav", SPEECH)
    assert wav_duration(speech) > SEGMENT_SECONDS + 0.2, wav_duration(speech)
    meta = tiny_v15_meta(comfy_server)
    style = {}
    for index in range(len(meta.blocks)):
        for target in STYLE_TARGETS:
            layer, key = meta.get_submodule(f"blocks.{index}.{target}"), lora_key(f"blocks.{index}.{target}")
            style.update({f"{key}.lora_down.weight": (STYLE_RANK, layer.in_features), f"{key}.alpha_scale": ()})
            style[f"{key}.lora_up.weight"] = (layer.out_features, STYLE_RANK)
    loras = comfy_server.models_dir / "loras"
    write_random_lora(loras / STYLE_LORA, style, seed=5, scale=0.2)
    write_random_lora(loras / DMD_COPY, distillation_tensor_set(meta), seed=6)
    image = comfy_server.upload(make_portrait(folder / "face.png"))
    return {"image": image, "audio": comfy_server.upload(speech), "audio_2": comfy_server.upload(speech, "b.wav")}


def widget_prompt(files: dict[str, str], tag: str, loader: dict[str, Any] | None = None) -> dict[str, Any]:
    """The v1.5 graph at 32x32 with the given widgets, probes on the sampler's inputs and output, no MP4."""
    prompt = fill_workflow(api_workflow(WORKFLOW), files["image"], [files["audio"]], size=SIZE)
    for name in ("LongCatAvatarDecode", "LongCatAvatarVideoCombine"):
        del prompt[node_id(prompt, name)]
    sampler = node_id(prompt, "LongCatAvatarSampler")
    prompt[sampler]["inputs"].update(SAMPLER)
    prompt[node_id(prompt, "LongCatAvatarModelLoader")]["inputs"].update(loader or LOADER)
    for role, source in (("portrait", "LongCatAvatarPortraitEncode"), ("audio", "LongCatAvatarAudioEncode")):
        prompt[f"p_{role}"] = probe_node(node_id(prompt, source), 0, f"{tag}_{role}")
    prompt["p_text"] = probe_node(node_id(prompt, "LongCatAvatarTextEncode"), 0, f"{tag}_text")
    prompt["p_video"] = probe_node(sampler, 0, f"{tag}_video")
    return prompt


@pytest.fixture(scope="module")
def node_run(comfy_server: ComfyServer, files: dict[str, str]) -> Any:
    """The graph with every widget off its default."""
    run = comfy_server.run(widget_prompt(files, "w"), timeout=900)
    assert run.status == "success", f"{run.error_message()}\n{comfy_server.log_tail()}"
    return run


@dataclass
class Engine:
    """The engine side: the model as the loader widgets say, the conditioning the node got, the direct result."""

    loaded: LoadedDiT
    vae: WanVAE
    cond: VideoConditioning
    settings: SamplerSettings
    direct: GeneratedVideo
    server: ComfyServer

    def load(self, **overrides: Any) -> torch.nn.Module:
        """The DiT loaded like the node does, with some loader settings changed."""
        return load_model(self.server, **overrides).model

    def first_segment(self, model: torch.nn.Module | None = None, **change: Any) -> torch.Tensor:
        """Segment 0's latents with one setting changed (the engine's own segment runner, as generate_video)."""
        settings = replace(self.settings, **change)
        sampler = SegmentSampler(model or self.loaded.model, self.vae, "v1.5", self.cond, settings)
        return sampler.first(draw_noise(make_generator(settings.seed), self.shape))

    def second_segment(self, **change: Any) -> torch.Tensor:
        """Segment 1's latents from the direct run's segment 0, with one setting changed."""
        settings = replace(self.settings, **change)
        sampler = SegmentSampler(self.loaded.model, self.vae, "v1.5", self.cond, settings)
        generator = make_generator(settings.seed)
        draw_noise(generator, self.shape)  # segment 0's noise comes first from the one generator
        latents = self.direct.segment_latents[0]
        frames = self.direct.frames[: self.direct.plan.frames_per_segment]  # segment 0 decoded, untrimmed
        return sampler.next(1, draw_noise(generator, self.shape), latents, frames, latents[:, :, :1].clone())

    @property
    def shape(self) -> tuple[int, ...]:
        return latent_shape(self.direct.plan.frames_per_segment, self.cond.height, self.cond.width)


def load_model(server: ComfyServer, **overrides: Any) -> LoadedDiT:
    """load_dit with the loader widgets' values (and overrides), as the model loader node calls it."""
    widgets = {**LOADER, **overrides}
    lora = widgets["lora"]
    return load_dit(
        server.models_dir / "longcat" / "LongCat-Video-Avatar-1.5" / "base_model",
        dtype={"bf16": torch.bfloat16, "fp32": torch.float32}[widgets["dtype"]],
        lora_path=None if lora == "none" else server.models_dir / "loras" / lora,
        lora_strength=widgets["lora_strength"],
        merge_lora=widgets["merge_lora"],
        multi_speaker={"single": False, "multi": True}[widgets["speakers"]],
    )


@pytest.fixture(scope="module")
def engine(comfy_server: ComfyServer, node_run: Any) -> Engine:
    """generate_video called directly with the node's inputs and the same widget values."""
    longcat = comfy_server.models_dir / "longcat"
    settings = SamplerSettings(
        **SAMPLER,
        lora=LORA_OTHER,  # what the loader found: the style LoRA is not the DMD tensor set
        scheduler_dir=longcat / "LongCat-Video-Avatar-1.5" / "scheduler",
    )
    loaded = load_model(comfy_server)
    vae = WanVAE(load_wan_vae(longcat / "LongCat-Video" / "vae", dtype=torch.float32))
    cond = probed_conditioning(comfy_server.output_dir, "w")
    with torch.inference_mode():
        direct = generate_video(loaded.model, vae, "v1.5", cond, settings)
    return Engine(loaded, vae, cond, settings, direct, comfy_server)


def test_the_node_video_equals_a_direct_engine_call_bit_for_bit(comfy_server: ComfyServer, engine: Engine) -> None:
    video, scalars = read_probe(comfy_server.output_dir, "w_video")
    direct = engine.direct
    assert direct.plan.num_segments == 2 and f"value.result.segment_latents.{2}" not in video
    for index, theirs in enumerate(direct.segment_latents):
        assert torch.equal(video[f"value.result.segment_latents.{index}"], theirs), index
    assert torch.equal(video["value.result.frames"], direct.frames)
    assert scalars["value.result.fps"] == 25 and direct.frames.shape[0] > direct.plan.frames_per_segment


def test_auto_keeps_a_style_loras_steps_and_guidance_and_says_why(comfy_server: ComfyServer, node_run: Any) -> None:
    sampler = node_id(widget_prompt({"image": "", "audio": ""}, "x"), "LongCatAvatarSampler")
    (info,) = node_run.outputs(sampler)["text"]
    assert "full sampling: 2 steps with guidance (text 2.5, audio 2)" in info
    assert "auto keeps them: the LoRA is not the DMD distillation LoRA" in info and "2 segment(s)" in info
    progress = [m["value"] for m in node_run.progress_messages() if m["node"] == sampler]
    assert progress[-1] > 2 * 2  # the continuation adds the reference's unshifted tail to the 2 steps


def test_the_segment_runner_is_what_generate_video_ran(engine: Engine) -> None:
    """The sensitivity tests below vary one setting of the engine's segment runner; unchanged, it reproduces both."""
    assert torch.equal(engine.first_segment(), engine.direct.segment_latents[0])
    assert torch.equal(engine.second_segment(), engine.direct.segment_latents[1])


@pytest.mark.parametrize(
    ("widget", "value"),
    [("steps", 3), ("shift", 7.0), ("text_guidance", 4.0), ("audio_guidance", 3.0)],
)
def test_each_sampling_widget_changes_the_first_segment(engine: Engine, widget: str, value: float) -> None:
    assert not torch.equal(engine.first_segment(**{widget: value}), engine.direct.segment_latents[0]), widget


@pytest.mark.parametrize(("widget", "value"), [("ref_img_index", 10), ("mask_frame_range", 3)])
def test_each_continuation_widget_changes_the_second_segment(engine: Engine, widget: str, value: int) -> None:
    """ref_img_index and mask_frame_range only act on continuation segments."""
    assert torch.equal(engine.first_segment(**{widget: value}), engine.direct.segment_latents[0])
    assert not torch.equal(engine.second_segment(**{widget: value}), engine.direct.segment_latents[1]), widget


def test_lora_strength_and_dtype_change_the_video(engine: Engine) -> None:
    base = engine.direct.segment_latents[0]
    assert not torch.equal(engine.first_segment(engine.load(lora_strength=1.0)), base)
    assert not torch.equal(engine.first_segment(engine.load(dtype="fp32")), base)


def test_merge_lora_changes_the_video_only_by_float_rounding(engine: Engine) -> None:
    """Merged (W + s·up·down) and on-the-fly (W·x + s·up(down(x))) are the same map; in fp32 only rounding differs,
    hundreds of times less than what the LoRA itself changes."""
    merged = engine.first_segment(engine.load(dtype="fp32", merge_lora=True))
    on_the_fly = engine.first_segment(engine.load(dtype="fp32", merge_lora=False))
    without = engine.first_segment(engine.load(dtype="fp32", lora="none"))
    rounding, lora_effect = rel_l2(merged, on_the_fly), rel_l2(on_the_fly, without)
    assert rounding < 1e-4 and lora_effect > 100 * rounding, (rounding, lora_effect)


def test_speakers_must_not_change_a_one_speaker_video(engine: Engine) -> None:
    """v1.5 has one DiT for one and two speakers: the widget only says what the file is (it gates two speakers)."""
    multi = load_model(engine.server, speakers="multi")
    assert multi.multi_speaker and not engine.loaded.multi_speaker
    assert torch.equal(engine.first_segment(multi.model), engine.direct.segment_latents[0])


def test_two_speakers_with_a_single_speaker_model_are_refused(comfy_server: ComfyServer, files) -> None:
    prompt = fill_workflow(
        api_workflow("longcat_avatar_v15_two_speakers"), files["image"], [files["audio"], files["audio_2"]], SIZE
    )
    prompt[node_id(prompt, "LongCatAvatarModelLoader")]["inputs"].update(speakers="single")
    run = comfy_server.run(prompt, timeout=900)
    error = next(data for kind, data in run.history["status"]["messages"] if kind == "execution_error")
    assert error["node_type"] == "LongCatAvatarSampler"
    assert "two speakers need a multi-speaker model" in error["exception_message"]


def test_a_renamed_dmd_lora_is_recognised_by_its_tensors(comfy_server: ComfyServer, files) -> None:
    """The loader tells the sampler which LoRA it loaded: the DMD tensor set under any name, never a style LoRA."""
    found = {}
    for lora in (DMD_COPY, STYLE_LORA, f"{V15}/lora/dmd_lora.safetensors"):
        loader = {**LOADER, "lora": lora, "dtype": "fp32", "merge_lora": False}
        prompt = {"1": {"class_type": "LongCatAvatarModelLoader", "inputs": loader}, "2": probe_node("1", 0, "lora")}
        run = comfy_server.run(prompt, timeout=600)
        assert run.status == "success", run.error_message()
        found[lora] = read_probe(comfy_server.output_dir, "lora")[1]["value.loaded.lora.distillation"]
    assert found == {DMD_COPY: True, STYLE_LORA: False, f"{V15}/lora/dmd_lora.safetensors": True}
