"""Audio Encode on a real ComfyUI server fed by ComfyUI's own AUDIO_ENCODER (a real core AudioEncoderModel at a tiny
size, from the probe's test-only loader: core Load Audio Encoder hard-codes the full sizes): the server accepts the
link, and the features equal our loader's for the same weights file, for v1.5 (Whisper) and v1.0 (wav2vec2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pipeline.audio.encoders import load_audio_encoder
from pipeline.audio.features import compute_audio_features
from support.avatar_graph import probe_node, read_probe
from support.comfy_server import ComfyServer
from support.core_audio_encoders import CORE_FILE_PREFIX, core_config, write_weights

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

SPEECH = Path(__file__).resolve().parents[2] / "examples" / "speech.wav"
CASES = {"v1.5": ("whisper", 32), "v1.0": ("wav2vec2", 12)}  # the layer counts the reference hard-codes
SEED = 5  # v1.0's noise floor seed, the same on both sides


def test_core_audio_encoder_on_the_server(comfy_server: ComfyServer, tmp_path: Path) -> None:
    prompt = {"audio": {"class_type": "LoadAudio", "inputs": {"audio": comfy_server.upload(SPEECH)}}}
    prompt["p_audio"] = probe_node("audio", 0, "core_enc_audio")
    files = {}
    for version, (kind, layers) in CASES.items():
        files[version] = write_weights(kind, tmp_path / f"{kind}.safetensors", layers)
        config = json.dumps(core_config(kind, layers))
        prompt[f"core_{kind}"] = {
            "class_type": "LongCatTestTinyCoreAudioEncoder",
            "inputs": {"file": str(files[version]), "config": config, "prefix": CORE_FILE_PREFIX[kind]},
        }
        inputs = {"audio_encoder": [f"core_{kind}", 0], "audio": ["audio", 0], "mode": "para", "seed": SEED}
        inputs |= {"speaker_boxes": "", "extra_people_boxes": "", "separate_vocals": "off"}
        prompt[f"encode_{kind}"] = {"class_type": "LongCatAvatarAudioEncode", "inputs": inputs}
        prompt[f"p_{kind}"] = probe_node(f"encode_{kind}", 0, f"core_enc_{kind}")
    run = comfy_server.run(prompt, timeout=600)
    assert run.status == "success", f"{run.error_message()}\n{comfy_server.log_tail()}"

    tensors, scalars = read_probe(comfy_server.output_dir, "core_enc_audio")
    audio = {"waveform": tensors["value.waveform"], "sample_rate": scalars["value.sample_rate"]}
    for version, (kind, _) in CASES.items():
        dumped = comfy_server.output_dir / "probe" / f"core_enc_{kind}.safetensors"
        assert dumped.is_file(), f"Audio Encode on core_{kind} did not run (link refused?)\n{comfy_server.log_tail()}"
        served = read_probe(comfy_server.output_dir, f"core_enc_{kind}")[0]["value.features.features"]
        ours = compute_audio_features(audio, load_audio_encoder(files[version], version=version), seed=SEED).features
        assert served.shape == ours.shape and served.abs().sum() > 0
        # Same fp16 weights upcast to fp32 and the same modules in two processes: only the BLAS threading of the
        # server may order float sums differently, far below the features' unit scale (LayerNorm outputs).
        torch.testing.assert_close(served, ours, rtol=0, atol=1e-5)
