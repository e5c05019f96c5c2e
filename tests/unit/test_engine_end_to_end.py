"""End to end through the engine with tiny models in the official layouts: portrait + real speech → frames.

Covers the real loaders (DiT, audio encoder, umT5 + cache, Wan VAE), audio features, the segment plan, ai2v and
continuation (VAE decode / re-encode of the overlap), trimming to the audio at the native fps, progress, seeding.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import soundfile
import torch

from pipeline.audio.encoders import load_audio_encoder
from pipeline.audio.features import compute_audio_features
from pipeline.checkpoints.dit_loader import load_dit
from pipeline.portrait import prepare_portrait
from pipeline.sampling.hooks import Interrupted, SamplerHooks
from pipeline.sampling.sampler import GeneratedVideo, SamplerSettings, VideoConditioning, generate_video
from pipeline.sampling.schedules import build_schedule, find_scheduler_dir
from pipeline.text.encoder import CachedTextEncoder
from pipeline.text.prompt import DEFAULT_NEGATIVE_PROMPT
from pipeline.vae.loader import load_wan_vae
from pipeline.vae.wan_vae import WanVAE
from support import refvec
from support.tiny_models import OfficialLayout, build_official_layout

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SIZE = 32  # pixels: 4×4 latents, 2×2 tokens per frame keep a two-segment run at a few seconds on CPU
PROMPT = "A person talks to the camera with a friendly expression."


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> OfficialLayout:
    """models/longcat/... with the refvec tiny DiTs and audio encoders and a tiny VAE / umT5."""
    return build_official_layout(tmp_path_factory.mktemp("models"), refvec.refvec_roots()[0])


@pytest.fixture(scope="module")
def speech() -> dict:
    """The example speech played twice (about 6.7 s of real speech), as a ComfyUI AUDIO."""
    samples, rate = soundfile.read(EXAMPLES / "speech.wav", dtype="float32", always_2d=True)
    doubled = np.concatenate([samples, samples]).T  # [channels, samples]
    return {"waveform": torch.from_numpy(doubled)[None], "sample_rate": rate}


@pytest.fixture(scope="module")
def portrait_image() -> torch.Tensor:
    """examples/portrait.png as a ComfyUI IMAGE [1, H, W, 3] in [0, 1]."""
    image = np.asarray(PIL.Image.open(EXAMPLES / "portrait.png").convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(image)[None]


@pytest.fixture(scope="module")
def engine(
    layout: OfficialLayout, speech: dict, portrait_image: torch.Tensor, tmp_path_factory: pytest.TempPathFactory
):
    """`engine(version)` → (model, vae, conditioning), loaded once per version for the whole module."""
    cache_dir, loaded = tmp_path_factory.mktemp("text-cache"), {}

    def get(version: str):
        if version not in loaded:
            loaded[version] = conditioning(layout, version, speech, portrait_image, cache_dir)
        return loaded[version]

    return get


def conditioning(layout: OfficialLayout, version: str, speech: dict, image: torch.Tensor, cache: Path):
    """(model, vae, conditioning) for one version, loaded the way a node would from the official layout."""
    avatar = layout.avatar_v10 if version == "v1.0" else layout.avatar_v15
    dit_dir, audio_dir = (
        ("avatar_single", "chinese-wav2vec2-base") if version == "v1.0" else ("base_model", "whisper-large-v3")
    )
    model = load_dit(avatar / dit_dir, dtype=torch.float32).model
    features = compute_audio_features(speech, load_audio_encoder(avatar / audio_dir, version=version), seed=1)
    texts = CachedTextEncoder(layout.longcat_video, cache, dtype=torch.float32)
    portrait = prepare_portrait(image, mode="custom", width=SIZE, height=SIZE)
    cond = VideoConditioning(
        texts.encode(PROMPT), texts.encode(DEFAULT_NEGATIVE_PROMPT), features, SIZE, SIZE, portrait.pixels
    )
    return model, WanVAE(load_wan_vae(layout.longcat_video, dtype=torch.float32)), cond


def run(model, vae, version: str, cond: VideoConditioning, settings: SamplerSettings, events: list) -> GeneratedVideo:
    """generate_video with a progress recorder."""
    hooks = SamplerHooks(progress=lambda step, total, preview: events.append((step, total, preview is not None)))
    return generate_video(model, vae, version, cond, settings, hooks)


@pytest.mark.parametrize(
    ("version", "settings"),
    [
        # v1.5 as the demo runs it: the distilled 8-step schedule, no CFG, shift from Avatar-1.5's scheduler/.
        ("v1.5", SamplerSettings(distilled=True, seed=7)),
        # v1.0 with 2-step CFG: continuation switches to the enhance_hf tail (11 steps), shift from LongCat-Video.
        ("v1.0", SamplerSettings(steps=2, seed=7)),
    ],
)
def test_portrait_and_speech_to_frames(layout: OfficialLayout, speech: dict, engine, version: str, settings) -> None:
    """Frames at the native fps cover the speech exactly, over two segments; a seed reproduces them bit for bit."""
    settings = replace(settings, scheduler_dir=find_scheduler_dir(layout.avatar_v15.parent, version))
    model, vae, cond = engine(version)
    events: list = []
    video = run(model, vae, version, cond, settings, events)

    fps = 16 if version == "v1.0" else 25  # the model's native rates
    duration = speech["waveform"].shape[-1] / speech["sample_rate"]
    assert video.fps == fps and video.plan.num_segments == 2
    assert video.frames.shape == (math.ceil(duration * fps), SIZE, SIZE, 3) and video.frames.dtype == torch.uint8
    assert (video.frames.shape[0] - 1) / fps < duration <= video.frames.shape[0] / fps
    assert len(video.segment_latents) == 2 and video.segment_latents[1].shape == (1, 16, 24, 4, 4)
    assert video.frames.float().std() > 1  # decoded content, not a constant image

    shift = 7.0 if version == "v1.5" else 12.0  # from the layout's scheduler_config.json files
    first = build_schedule(version, settings.steps, settings.distilled, shift)
    cont = build_schedule(version, settings.steps, settings.distilled, shift, continuation=True)
    total = len(first) + len(cont)
    assert total == (16 if version == "v1.5" else 2 + 11)
    assert [e[:2] for e in events] == [(i, total) for i in range(1, total + 1)] and all(e[2] for e in events)


def test_same_seed_same_frames(engine) -> None:
    """A seed gives bit-identical frames (noise comes from a CPU generator); another seed gives other frames."""
    model, vae, cond = engine("v1.5")
    settings = SamplerSettings(distilled=True, seed=3)
    video = run(model, vae, "v1.5", cond, settings, [])
    assert torch.equal(run(model, vae, "v1.5", cond, settings, []).frames, video.frames)
    assert not torch.equal(run(model, vae, "v1.5", cond, replace(settings, seed=4), []).frames, video.frames)


def test_should_stop_interrupts_between_model_calls(engine) -> None:
    """should_stop() is honoured before the next DiT call: no further call, a dedicated exception."""
    model, vae, cond = engine("v1.5")
    calls: list[int] = []
    handle = model.register_forward_pre_hook(lambda *args: calls.append(1))
    steps: list[int] = []
    hooks = SamplerHooks(progress=lambda step, total, preview: steps.append(step), should_stop=lambda: len(steps) >= 3)
    try:
        with pytest.raises(Interrupted, match="3 of 16"):
            generate_video(model, vae, "v1.5", cond, SamplerSettings(distilled=True), hooks)
    finally:
        handle.remove()
    assert steps == [1, 2, 3] and len(calls) == 3
