"""Every API-format example workflow runs through POST /prompt on a real ComfyUI with tiny models and writes a
correct MP4: H.264 + AAC, the requested size and fps, as many frames as the audio lasts, the audio kept whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.avatar_graph import (
    TEST_SIZE,
    api_workflow,
    api_workflows,
    ensure_tiny_models,
    fill_workflow,
    make_portrait,
    make_speech,
    node_id,
    nodes_of,
    wav_duration,
)
from support.comfy_server import ComfyServer
from support.video_probe import probe

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

SPEECH = "Hello there. This short sentence drives the avatar's lips."
SPEECH_2 = "And I am the second speaker, answering."
# v1.5 segments hold 93 frames (3.72 s) and add 80 (3.2 s) each: this text lasts ~5 s, so two segments are chained.
LONG_SPEECH = "This longer speech needs more than one segment, so the sampler chains a second one after the first."


@pytest.fixture(scope="module")
def media(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, float]]:
    """Tiny models in the server's models folder; uploaded portrait and speech files (name, duration)."""
    ensure_tiny_models(comfy_server.models_dir)
    folder = tmp_path_factory.mktemp("media")
    files = {
        "portrait": make_portrait(folder / "portrait.png"),
        "speech": make_speech(folder / "speech.wav", SPEECH),
        "speech_2": make_speech(folder / "speech_2.wav", SPEECH_2),
        "long": make_speech(folder / "long.wav", LONG_SPEECH),
    }
    return {
        key: (comfy_server.upload(path), wav_duration(path) if path.suffix == ".wav" else 0.0)
        for key, path in files.items()
    }


def _audio_for(name: str, prompt: dict, media: dict[str, tuple[str, float]]) -> tuple[list[str], float]:
    """Which uploaded speech files the workflow's LoadAudio nodes get, and the soundtrack's expected duration."""
    loads = nodes_of(prompt, "LoadAudio")
    if not loads:  # the speech is made inside the graph (e.g. text to speech): its length is known afterwards
        return [], 0.0
    if len(loads) == 2:
        mode = nodes_of(prompt, "LongCatAvatarAudioEncode")[0]["inputs"]["mode"]
        a, b = media["speech"][1], media["speech_2"][1]
        return [media["speech"][0], media["speech_2"][0]], (a + b if mode == "add" else max(a, b))
    key = "long" if name.endswith("long_audio") else "speech"
    return [media[key][0]], media[key][1]


@pytest.mark.parametrize("name", sorted(api_workflows()))
def test_api_workflow_writes_a_correct_mp4(name: str, comfy_server: ComfyServer, media, tmp_path: Path) -> None:
    prompt = api_workflow(name)
    audios, duration = _audio_for(name, prompt, media)
    fill_workflow(prompt, media["portrait"][0], audios, prefix=f"tests/{name}")
    run = comfy_server.run(prompt, timeout=900)
    assert run.status == "success", f"{run.error_message()}\n{comfy_server.log_tail()}"

    combine = node_id(prompt, "LongCatAvatarVideoCombine")
    fps = prompt[combine]["inputs"]["frame_rate"]
    (item,) = run.outputs(combine)["images"]
    assert item["filename"].endswith(".mp4") and item["type"] == "output"
    info = probe(comfy_server.fetch_output(item, tmp_path / "out.mp4"))
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.width, info.height) == TEST_SIZE
    assert info.fps == fps
    duration = duration or info.audio_duration
    assert duration > 0.5, duration
    assert abs(info.frame_count - duration * fps) <= 1, (info.frame_count, duration)
    assert abs(info.audio_duration - duration) <= 1 / fps, (info.audio_duration, duration)
    embedded = json.loads(info.tags["prompt"])  # the workflow travels with the video
    assert embedded[combine]["class_type"] == "LongCatAvatarVideoCombine"

    sampler = node_id(prompt, "LongCatAvatarSampler")
    (text,) = run.outputs(sampler)["text"]
    steps = [m["value"] for m in run.progress_messages() if m["node"] == sampler]
    total = steps[-1] if steps else 0
    assert steps == list(range(1, total + 1)) and {
        m["max"] for m in run.progress_messages() if m["node"] == sampler
    } == {total}
    segments = int(text.split(" segment(s)")[0].rsplit(" ", 1)[-1])
    if name.endswith("long_audio"):
        assert segments >= 2, text
    per_segment = 8 if "distilled mode" in text else prompt[sampler]["inputs"]["steps"]
    assert "distilled mode" in text if prompt[sampler]["inputs"]["distilled"] == "auto" else "full sampling" in text
    if "distilled mode" in text:
        assert total == per_segment * segments, (total, text)
    else:  # a full-sampling continuation ends with the reference's unshifted tail: more steps, never fewer
        assert total >= per_segment * segments, (total, text)
