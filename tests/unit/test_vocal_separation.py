"""Vocal separation gives exactly audio-separator's stems for the same MDX-Net model (the official demos' separator).

The reference is audio-separator 0.30.2, as LongCat-Video's demos pin it, run in a small venv of its own
(support/audio_separator_ref.py says why and how it is cached) with the parameter tables placed in its model folder by
the test, so nothing is fetched. The model is a tiny stand-in with Kim_Vocal_2.onnx's input and output
(support/tiny_mdx.py). The track mixes real speech with tones and is given at 16, 22.05 and 48 kHz (mono and stereo) so
the resampling to 44.1 kHz is covered. At ~7 s audio-separator runs three overlapping chunks, the third wholly in the
tail padding, which we skip (two chunks, the same stems); at ~9.7 s both run three, the last one cut short.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio.resample import resample_like_librosa
from pipeline.audio.vocal_separation import KIM_VOCAL_2, VocalSeparatorError, load_vocal_separator
from pipeline.model_catalogue import ONNXRUNTIME_HINT
from support.audio_separator_ref import run_reference, write_model_tables
from support.tiny_mdx import build_tiny_mdx

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEECH = REPO_ROOT / "examples" / "speech.wav"
MODEL_FILE = "Kim_Vocal_2.onnx"
# Kim_Vocal_2's entry as UVR publishes it (TRvlvr/application_data mdx_model_data/model_data_new.json, key
# 970b3f9492014d18fefeedfe4773cb42), the table audio-separator downloads: KIM_VOCAL_2 must say the same.
UVR_ENTRY = {"compensate": 1.009, "mdx_dim_f_set": 3072, "mdx_dim_t_set": 8, "mdx_n_fft_scale_set": 7680,
             "primary_stem": "Vocals"}  # fmt: skip
# sample rate -> (channels, seconds of silence between the two copies of the speech, chunks we run at 44.1 kHz)
CASES = {16000: (1, 0.4, 2), 22050: (1, 3.0, 3), 48000: (2, 0.4, 2)}
INT16 = 32767  # audio-separator writes WAVs as (stem * 32767).astype(int16)


def mixture(rate: int, channels: int, gap_s: float) -> np.ndarray:
    """[channels, samples]: the example speech twice with a pause, plus a steady tone (another one on the right)."""
    speech, speech_rate = sf.read(SPEECH, dtype="float32")
    speech = resample_like_librosa(speech, speech_rate, rate)
    track = np.concatenate([speech, np.zeros(int(gap_s * rate), np.float32), speech])
    time = np.arange(len(track)) / rate
    left = track + 0.2 * np.sin(2 * np.pi * 330 * time)
    right = 0.5 * track + 0.15 * np.sin(2 * np.pi * 1250 * time)
    return np.stack([left, right] if channels == 2 else [left]).astype(np.float32)


@pytest.fixture(scope="module")
def separation_case(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny model, one WAV per case, and audio-separator's stems of each (one reference run for all)."""
    root = tmp_path_factory.mktemp("vocal")
    model = build_tiny_mdx(root / "models" / MODEL_FILE)
    write_model_tables(model.parent, MODEL_FILE, UVR_ENTRY)
    files = {}
    for rate, (channels, gap_s, _) in CASES.items():
        files[rate] = root / f"mix_{rate}.wav"
        sf.write(files[rate], mixture(rate, channels, gap_s).T, rate, subtype="FLOAT")
    (root / "out").mkdir()
    stems = run_reference(model.parent, MODEL_FILE, list(files.values()), root / "out")
    return {"model": model, "files": files, "reference": dict(zip(files, stems, strict=True))}


def test_vocal_parameters_are_uvrs_kim_vocal_2_entry() -> None:
    p = KIM_VOCAL_2
    assert (p.compensate, p.dim_f, p.dim_t, p.n_fft) == (
        UVR_ENTRY["compensate"],
        UVR_ENTRY["mdx_dim_f_set"],
        2 ** UVR_ENTRY["mdx_dim_t_set"],
        UVR_ENTRY["mdx_n_fft_scale_set"],
    )


@pytest.mark.slow
@pytest.mark.parametrize("rate", sorted(CASES))
def test_vocal_separation_equals_audio_separator(rate: int, separation_case: dict) -> None:
    separator = load_vocal_separator(separation_case["model"])
    wave, file_rate = sf.read(separation_case["files"][rate], dtype="float32", always_2d=True)
    chunks: list[tuple[int, int]] = []
    stems = separator.separate(wave.T, file_rate, on_chunk=lambda done, total: chunks.append((done, total)))

    samples_44k = int(np.ceil(wave.shape[0] * 44100 / rate))
    assert stems.sample_rate == 44100 and stems.vocals.shape == stems.rest.shape == (2, samples_44k)
    expected_chunks = CASES[rate][2]
    assert chunks[-1] == (expected_chunks, expected_chunks), "the chunks this track's length needs"
    reference = separation_case["reference"][rate]
    for name in ("vocals", "rest"):
        expected = np.load(reference[name]).T
        np.testing.assert_allclose(getattr(stems, name), expected, rtol=0, atol=2e-6, err_msg=name)
        written, _ = sf.read(reference[f"{name}_wav"], dtype="int16", always_2d=True)
        np.testing.assert_array_equal(written.T, (getattr(stems, name) * INT16).astype(np.int16), err_msg=name)
    # Not the identity: what the model removed (the rest) is audible.
    assert np.abs(stems.rest).max() > 0.05


def test_vocal_separation_says_how_to_install_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an environment without the package gives
    with pytest.raises(VocalSeparatorError) as error:
        load_vocal_separator(build_tiny_mdx(tmp_path / MODEL_FILE))
    assert str(error.value) == ONNXRUNTIME_HINT and "pip install onnxruntime-gpu" in ONNXRUNTIME_HINT


def test_vocal_separation_refuses_a_model_of_another_shape(tmp_path: Path) -> None:
    other = KIM_VOCAL_2.__class__(n_fft=6144, dim_f=2048, dim_t=256, compensate=1.0)
    model = build_tiny_mdx(tmp_path / "other.onnx", other)
    with pytest.raises(VocalSeparatorError, match=r"takes input \['batch', 4, 2048, 256\].*\[batch, 4, 3072, 256\]"):
        load_vocal_separator(model)
    with pytest.raises(VocalSeparatorError, match="does not exist"):
        load_vocal_separator(tmp_path / "missing.onnx")
