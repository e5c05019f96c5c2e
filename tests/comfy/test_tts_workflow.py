"""Text to Speech on a real ComfyUI: the node's AUDIO is espeak-ng's speech, and the text-to-speech workflow turns a
text into a talking MP4 whose soundtrack lasts as long as that speech."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from pipeline import tts
from support.avatar_graph import ensure_tiny_models
from support.comfy_server import REPO_ROOT, ComfyServer, ComfyServerError
from support.suite_limits import SERVER_TIMEOUT_S
from support.video_probe import decode_audio, probe

pytestmark = [pytest.mark.comfy]

TEXT = "Good morning. I was made from text."  # 2.5 s: one 93-frame segment keeps the test short


def _tts_node(text: str = TEXT, voice: str = "en-us", rate: int = 150, pitch: int = 50) -> dict:
    return {"class_type": "LongCatAvatarTextToSpeech", "inputs": {"text": text, "voice": voice, "rate": rate,
                                                                   "pitch": pitch}}  # fmt: skip


def test_node_schema_has_tooltips_and_audio_output(comfy_server: ComfyServer) -> None:
    info = comfy_server.get_json("/object_info/LongCatAvatarTextToSpeech")["LongCatAvatarTextToSpeech"]
    assert info["category"] == "LongCat Avatar" and info["output"] == ["AUDIO"]
    for name, spec in info["input"]["required"].items():
        assert spec[1].get("tooltip"), name


def test_node_outputs_the_espeak_speech(comfy_server: ComfyServer, tmp_path: Path) -> None:
    prompt = {
        "1": _tts_node(rate=170, pitch=40),
        "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "tests/tts"}},
    }
    run = comfy_server.run(prompt, timeout=SERVER_TIMEOUT_S)
    assert run.status == "success", run.error_message()
    (item,) = run.outputs("2")["audio"]
    flac = comfy_server.fetch_output(item, tmp_path / "speech.flac")
    saved, rate = soundfile.read(flac, dtype="float32", always_2d=True)
    saved = saved.T  # [channels, samples]
    expected = tts.synthesize(TEXT, rate=170, pitch=40)
    assert rate == expected.sample_rate and saved.shape == expected.samples.shape
    assert np.abs(saved - expected.samples).max() < 2 / 32768  # FLAC keeps 16-bit PCM exactly (+ rounding)


def test_node_refuses_an_unknown_voice(comfy_server: ComfyServer) -> None:
    prompt = {"1": _tts_node(voice="qqq"), "2": {"class_type": "PreviewAudio", "inputs": {"audio": ["1", 0]}}}
    with pytest.raises(ComfyServerError, match="espeak-ng has no voice 'qqq'"):
        comfy_server.queue(prompt)


@pytest.mark.slow
def test_tts_workflow_makes_a_talking_video(comfy_server: ComfyServer, tmp_path: Path) -> None:
    ensure_tiny_models(comfy_server.models_dir)
    output = tmp_path / "tts.mp4"
    command = [
        sys.executable, "-m", "longcat_avatar", "generate", "--image", str(REPO_ROOT / "examples" / "portrait.png"),
        "--text", TEXT, "--voice", "en-us", "--output", str(output), "--resolution", "64x96", "--seed", "5",
        "--server", comfy_server.url,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    speech_s = tts.synthesize(TEXT, voice="en-us", rate=150).duration_s  # the workflow's rate
    info = probe(output)
    assert (info.video_codec, info.audio_codec, info.width, info.height, info.fps) == ("h264", "aac", 64, 96, 25)
    assert abs(info.audio_duration - speech_s) <= 1 / 25, (info.audio_duration, speech_s)
    assert abs(info.frame_count - speech_s * 25) <= 1
    soundtrack, _ = decode_audio(output)
    assert np.sqrt(np.mean(soundtrack**2)) > 0.02  # the speech itself, not silence
    embedded = json.loads(info.tags["prompt"])
    (speaker,) = [n for n in embedded.values() if n["class_type"] == "LongCatAvatarTextToSpeech"]
    assert speaker["inputs"]["text"] == TEXT
