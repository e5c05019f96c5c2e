"""Audio parity: every `audio` case of every vector set, stage by stage, with the stored tiny encoders.

The encoders are loaded through the normal loader (`load_audio_encoder`) from the folders the case names. v1.0
cases inject the stored noise floor (the reference drew it from numpy's global RNG). A separate chained test
starts from `audio/wave_44k.wav` and runs OUR resampling and the whole v1.0 / v1.5 paths down to the windows.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from pipeline.audio.encoders import AudioEncoder, load_audio_encoder
from pipeline.audio.features import embed_speech, prepare_track
from pipeline.audio.wav2vec2_features import noise_floor
from pipeline.audio.windows import gather_windows, window_indices
from pipeline.sampling.segments import plan_segments
from support import refvec

# Reference stage name -> name in our trace dict (the rest are compared explicitly).
V10_TRACE = {
    "s1_loudness_norm": "loudness_normalized",
    "s2_noise_floor_added": "noise_added",
    "s3_smooth_transients": "low_passed",
    "input_values": "input_values",
    "conv_features": "conv_features",
    "conv_features_interp": "conv_features_interp",
    "hidden_states_all": "hidden_states",
}


@cache
def _encoder(folder: str) -> AudioEncoder:
    """Encoders are loaded once per folder through the normal loader."""
    return load_audio_encoder(folder)


def _window_plan(case: refvec.RefCase) -> tuple[int, int]:
    """(frames per segment, conditioning frames) of the demo windowing recorded in the case's sidecar."""
    text = " ".join(case.sidecar.get("stages", []))
    match = re.search(r"num_frames=(\d+), num_cond_frames=(\d+)", text)
    assert match, f"{case.id}: the sidecar does not state num_frames / num_cond_frames of its windows"
    return int(match.group(1)), int(match.group(2))


def _windows(case: refvec.RefCase, full: torch.Tensor) -> dict[str, torch.Tensor]:
    """Segment-1 and segment-2 windows (and their indices) of a full embedding [steps, S, A]."""
    stride = int(case.params["audio_stride"])
    num_frames, num_cond = _window_plan(case)
    plan = plan_segments(2 * num_frames - num_cond, num_frames, num_cond)  # the sampler's plan of two segments
    produced = {}
    for segment in (0, 1):
        start = plan.start_frame(segment) * stride  # as AudioFeatures.windows places a segment's first frame
        name = f"window_seg{segment + 1}"
        produced[name] = gather_windows(full[None], start, num_frames, stride)
        produced[name + "_indices"] = window_indices(start, num_frames, stride, full.shape[0])
    return produced


def _embed(case: refvec.RefCase, speech: np.ndarray, trace: dict) -> torch.Tensor:
    """Our full embedding of a 16 kHz track, with the case's stored noise floor for v1.0."""
    encoder = _encoder(str(case.model_path("audio_encoder")))
    assert encoder.version == case.version, f"{case.id}: loader says {encoder.version}"
    noise = case.tensor("noise_floor_noise").double().numpy() if "noise_floor_noise" in case.inputs else None
    return embed_speech(speech, encoder, noise=noise, trace=trace)


def _stage_outputs(case: refvec.RefCase, full: torch.Tensor, trace: dict) -> dict[str, torch.Tensor]:
    """Every reference stage output this case lists, produced by our code."""
    produced = {"audio_emb": full, **_windows(case, full)}
    if case.version == "v1.0":
        produced.update({ref: trace[ours] for ref, ours in V10_TRACE.items()})
        return produced
    produced["s1_loudness_norm"] = trace["loudness_normalized"]
    produced["mel_chunk0"] = trace["mel"][:, :3000]  # one 30 s chunk = 3000 mel frames
    if "encoder_hidden_states_chunk0_first" in case.outputs:
        # The reference stored only the first frames of chunk 0's hidden states [33, frames, D].
        stored = case.tensor("encoder_hidden_states_chunk0_first")
        produced["encoder_hidden_states_chunk0_first"] = trace["hidden_states_chunk0"][:, : stored.shape[1]]
    return produced


def _resample_case(case: refvec.RefCase) -> None:
    """A waveform case: our AUDIO → 16 kHz preparation against librosa.load(sr=16000)."""
    rates = case.sidecar["sample_rates"]
    source = case.inputs[0]
    for output in case.outputs:
        assert rates[output] == 16000, f"{case.id}: only 16 kHz targets are produced by the pipeline"
        audio = {"waveform": case.tensor(source)[None, None], "sample_rate": rates[source]}
        case.compare(output, torch.from_numpy(prepare_track(audio)))
    case.assert_all_compared()


@pytest.mark.parametrize("case", refvec.case_params("audio"))
def test_audio_case(case) -> None:
    case = refvec.require_case(case)
    if case.version is None:
        _resample_case(case)
        return
    speech = case.tensor("speech_in").numpy()
    trace: dict = {}
    full = _embed(case, speech, trace)
    produced = _stage_outputs(case, full, trace)
    case.compare_all({name: produced[name] for name in case.outputs})


def _wav_track(root: Path) -> np.ndarray:
    """`audio/wave_44k.wav` read as ComfyUI's LoadAudio hands it over, then OUR mono/resample preparation."""
    samples, rate = soundfile.read(str(root / "audio" / "wave_44k.wav"), dtype="float32", always_2d=True)
    waveform = torch.from_numpy(samples.T.copy())[None]  # [batch, channels, samples]
    return prepare_track({"waveform": waveform, "sample_rate": rate})


def _wav_derived(case: refvec.RefCase, track: np.ndarray) -> bool:
    """True when the case's input is the 16 kHz resample of wave_44k.wav (within the resample tolerance)."""
    stored = case.tensor("speech_in").numpy()
    return stored.shape == track.shape and float(np.abs(stored - track).max()) <= 1e-4


@pytest.mark.parametrize("case", refvec.case_params("audio"))
def test_chained_from_wav(case) -> None:
    """wave_44k.wav → our resampling → whole v1.0 / v1.5 path → windows, against the stored outputs."""
    case = refvec.require_case(case)
    if case.version is None:
        pytest.skip("waveform case: covered by test_audio_case")
    track = _wav_track(case.root)
    if not _wav_derived(case, track):
        pytest.skip(f"{case.id} does not start from wave_44k.wav")
    trace: dict = {}
    full = _embed(case, track, trace)
    produced = {"audio_emb": full, **_windows(case, full)}
    for name in produced:
        if name in case.outputs:
            case.compare(name, produced[name])
    assert "audio_emb" in case._compared and "window_seg2" in case._compared


@pytest.mark.parametrize("root", refvec.refvec_roots(), ids=str)
def test_every_set_has_a_chained_case_per_version(root: Path) -> None:
    """The chained test must not skip everything: each set has a wave_44k-derived case for v1.0 and v1.5."""
    track = _wav_track(root)
    versions = {
        c.version for c in refvec.iter_cases("audio") if c.root == root and c.version and _wav_derived(c, track)
    }
    assert {"v1.0", "v1.5"} <= versions, f"{root}: wav-derived audio cases only for {sorted(versions)}"


@pytest.mark.parametrize("case", refvec.case_params("audio"))
def test_v10_seed_reproduces_the_reference_noise_floor(case) -> None:
    """Our seeded noise floor is numpy's legacy generator, so the reference's seed gives its very noise and outputs."""
    case = refvec.require_case(case)
    seed = case.params.get("numpy_seed_before_call")
    if seed is None:
        pytest.skip(f"{case.id} records no numpy seed (no random noise floor)")
    speech = case.tensor("speech_in").numpy()
    noise = noise_floor(len(speech), int(seed))
    stored = case.tensor("noise_floor_noise")
    tolerance = refvec.Tolerance(max_abs=1e-8)  # the stored noise is float32 (values ~0.02), ours float64
    refvec.assert_close_to_reference(noise, stored, tolerance, f"{case.id}:noise_floor_noise")
    full = embed_speech(speech, _encoder(str(case.model_path("audio_encoder"))), rng=int(seed))
    case.compare("audio_emb", full)
