"""AUDIO input checks, mono mixing and resampling to 16 kHz, including bad and unusual inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.audio.errors import AudioInputError
from pipeline.audio.features import prepare_track
from pipeline.audio.input import audio_to_mono
from pipeline.audio.loudness import measure_loudness, normalize_loudness
from pipeline.audio.resample import resample_to_16k, resampled_length
from support.audio_helpers import as_audio, speech_like


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    """Frequency of the strongest FFT bin."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        ("not a dict", "ComfyUI AUDIO"),
        ({"waveform": torch.zeros(1, 1, 10)}, "ComfyUI AUDIO"),
        ({"waveform": torch.zeros(1, 1, 0), "sample_rate": 16000}, "empty"),
        ({"waveform": torch.zeros(1, 0, 100), "sample_rate": 16000}, "no channels"),
        ({"waveform": torch.zeros(0, 1, 100), "sample_rate": 16000}, "batch of 0"),
        ({"waveform": torch.zeros(2, 1, 100), "sample_rate": 16000}, "batch of 2"),
        ({"waveform": torch.zeros(1, 1, 1, 100), "sample_rate": 16000}, "shape"),
        ({"waveform": torch.tensor([[[0.1, float("nan"), 0.2]]]), "sample_rate": 16000}, "NaN"),
        ({"waveform": torch.tensor([[[0.1, float("inf"), 0.2]]]), "sample_rate": 16000}, "NaN or infinite"),
        ({"waveform": torch.zeros(1, 1, 100), "sample_rate": 0}, "at least 1000 Hz"),
        ({"waveform": torch.zeros(1, 1, 100), "sample_rate": -44100}, "at least 1000 Hz"),
        ({"waveform": torch.zeros(1, 1, 100), "sample_rate": float("nan")}, "at least 1000 Hz"),
        ({"waveform": torch.zeros(1, 1, 100), "sample_rate": 44.1}, "at least 1000 Hz"),
        ({"waveform": torch.zeros(1, 1, 100), "sample_rate": "fast"}, "must be a number"),
        ({"waveform": "noise", "sample_rate": 16000}, "numeric array"),
    ],
)
def test_bad_audio_is_refused_with_a_clear_error(audio, message) -> None:
    with pytest.raises(AudioInputError, match=message):
        prepare_track(audio)


def test_audio_input_error_is_a_value_error() -> None:
    assert issubclass(AudioInputError, ValueError)


def test_stereo_is_averaged_like_librosa_to_mono() -> None:
    stereo = speech_like(0.5, channels=2)
    mono, rate = audio_to_mono(as_audio(stereo))
    assert rate == 16000
    np.testing.assert_array_equal(mono, np.mean(stereo, axis=0, dtype=np.float32))


def test_other_layouts_dtypes_and_devices_are_accepted() -> None:
    wave = speech_like(0.25)[0]
    reference, _ = audio_to_mono(as_audio(wave))
    for waveform in (torch.from_numpy(wave), torch.from_numpy(wave)[None], torch.from_numpy(wave)[None, None].double()):
        mono, _ = audio_to_mono({"waveform": waveform, "sample_rate": 16000})
        np.testing.assert_array_equal(mono, reference)
    half, _ = audio_to_mono({"waveform": torch.from_numpy(wave).half()[None, None], "sample_rate": 16000})
    assert half.dtype == np.float32 and np.abs(half - reference).max() < 1e-3


def test_16k_input_passes_through_unchanged() -> None:
    wave = speech_like(0.3)
    np.testing.assert_array_equal(prepare_track(as_audio(wave, 16000)), wave[0])


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000, 7350, 32000.5])
def test_odd_rates_are_resampled_keeping_pitch_level_and_librosa_length(rate) -> None:
    n = int(1.5 * rate)
    tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / rate)).astype(np.float32)
    track = prepare_track({"waveform": torch.from_numpy(tone)[None, None], "sample_rate": rate})
    # librosa's rule, float ratio first: for 7350 Hz that gives 24001 samples where exact arithmetic says 24000.
    assert len(track) == math.ceil(n * (16000 / rate)) == resampled_length(n, rate)
    assert track.dtype == np.float32
    assert abs(_peak_hz(track, 16000) - 1000) < 2  # a 1 kHz tone stays a 1 kHz tone
    middle = track[len(track) // 4 : 3 * len(track) // 4]
    assert abs(np.sqrt(np.mean(middle**2)) - 0.5 / np.sqrt(2)) < 0.005  # same RMS, no gain change


def test_resampling_removes_content_above_the_new_nyquist() -> None:
    rate = 48000
    tone = np.sin(2 * np.pi * 12000 * np.arange(rate) / rate).astype(np.float32)  # 12 kHz > 8 kHz Nyquist
    assert np.abs(resample_to_16k(tone, rate)[1000:-1000]).max() < 1e-3


def test_very_short_audio_is_resampled_to_at_least_one_sample() -> None:
    track = prepare_track({"waveform": torch.full((1, 1, 3), 0.1), "sample_rate": 44100})
    assert len(track) == 2  # ceil(3 * 16000 / 44100)


def test_loudness_normalisation_reaches_minus_23_lufs() -> None:
    wave = speech_like(3.0)[0].astype(np.float64)
    for gain in (0.05, 1.0, 3.0):
        assert abs(measure_loudness(normalize_loudness(wave * gain)) - (-23.0)) < 1e-6


def test_silence_and_unmeasurably_short_audio_are_left_unchanged() -> None:
    silence = np.zeros(32000)
    assert measure_loudness(silence) == float("-inf")
    assert normalize_loudness(silence) is silence
    short = speech_like(0.3)[0]  # shorter than the 400 ms gating block
    assert normalize_loudness(short) is short
