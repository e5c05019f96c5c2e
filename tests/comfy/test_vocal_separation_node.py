"""Vocal separation on a real ComfyUI server with a tiny Kim_Vocal_2 stand-in: the Vocal Separation node gives the
engine's stems, and Audio Encode with `separate_vocals` computes its features from the vocals while its soundtrack
output stays the original audio (as the official demos mux the raw speech)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from pipeline.audio.vocal_separation import load_vocal_separator
from pipeline.model_catalogue import VOCAL_SEPARATOR_V15, WHISPER
from support.avatar_graph import probe_node, read_probe
from support.comfy_server import ComfyServer

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

SPEECH = Path(__file__).resolve().parents[2] / "examples" / "speech.wav"


@pytest.fixture(scope="module")
def server(comfy_server: ComfyServer) -> ComfyServer:
    """The shared server with the probe node and the tiny models, separator stand-ins included (conftest.py)."""
    return comfy_server


def encode(audio: list, separate_vocals: str) -> dict:
    """An Audio Encode node on the tiny Whisper (node "3")."""
    inputs = {"audio_encoder": ["3", 0], "audio": audio, "mode": "para", "speaker_boxes": "", "extra_people_boxes": ""}
    return {
        "class_type": "LongCatAvatarAudioEncode",
        "inputs": inputs | {"seed": 0, "separate_vocals": separate_vocals},
    }


def test_vocal_separation_node_and_audio_encode(server: ComfyServer, tmp_path: Path) -> None:
    speech, rate = sf.read(SPEECH, dtype="float32")
    music = 0.3 * np.sin(2 * np.pi * 220 * np.arange(len(speech)) / rate)
    sf.write(tmp_path / "song.wav", (speech + music).astype(np.float32), rate, subtype="FLOAT")
    prompt = {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": server.upload(tmp_path / "song.wav")}},
        "2": {"class_type": "LongCatAvatarVocalSeparation", "inputs": {"audio": ["1", 0], "separator": "auto"}},
        "3": {
            "class_type": "LongCatAvatarAudioEncoderLoader",
            "inputs": {"audio_encoder": WHISPER.choice, "dtype": "fp32"},
        },
        "4": encode(["1", 0], "auto"),  # separation inside Audio Encode
        "5": encode(["2", 0], "off"),  # the node's vocals, encoded as they are
        "6": encode(["1", 0], "off"),  # the song itself
    }
    probes = {"song": ("1", 0), "vocals": ("2", 0), "rest": ("2", 1), "separated": ("4", 0), "soundtrack": ("4", 1)}
    probes |= {"vocals_encoded": ("5", 0), "song_encoded": ("6", 0)}
    prompt |= {f"p_{name}": probe_node(node, slot, name) for name, (node, slot) in probes.items()}
    run = server.run(prompt, timeout=600)
    assert run.status == "success", f"{run.error_message()}\n{server.log_tail()}"
    got = {name: read_probe(server.output_dir, name)[0] for name in probes}
    rates = {name: read_probe(server.output_dir, name)[1].get("value.sample_rate") for name in ("song", "vocals")}

    song = got["song"]["value.waveform"][0].numpy()
    model = server.models_dir / "longcat" / VOCAL_SEPARATOR_V15.relpath
    stems = load_vocal_separator(model).separate(song, rates["song"])
    np.testing.assert_allclose(got["vocals"]["value.waveform"][0].numpy(), stems.vocals, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["rest"]["value.waveform"][0].numpy(), stems.rest, rtol=0, atol=1e-6)
    assert rates["vocals"] == 44100

    features = {name: got[name]["value.features.features"] for name in ("separated", "vocals_encoded", "song_encoded")}
    torch.testing.assert_close(features["separated"], features["vocals_encoded"], rtol=0, atol=0)
    assert not torch.allclose(features["separated"], features["song_encoded"], atol=1e-4)
    torch.testing.assert_close(got["soundtrack"]["value.waveform"], got["song"]["value.waveform"], rtol=0, atol=0)
