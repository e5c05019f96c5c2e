"""compute_audio_features end to end with the tiny encoders: padding, seeds, silence, loudness, resampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.audio.errors import AudioInputError
from pipeline.audio.features import compute_audio_features, embed_speech
from pipeline.audio.wav2vec2_features import noise_floor
from support.audio_helpers import as_audio, speech_like, tiny_encoder


@pytest.mark.parametrize(("version", "steps_per_second"), [("v1.0", 32), ("v1.5", 25)])
def test_default_pads_to_whole_segments(version: str, steps_per_second: int) -> None:
    feats = compute_audio_features(as_audio(speech_like(2.0)), tiny_encoder(version))
    fps = 16 if version == "v1.0" else 25
    assert (feats.version, feats.fps, feats.stride, feats.num_speakers) == (version, fps, steps_per_second // fps, 1)
    assert feats.source_duration_s == 2.0
    assert feats.num_frames >= 93 and feats.num_frames < 94  # one 93-frame segment covers 2 s at either fps
    assert feats.num_steps == int(feats.duration_s * steps_per_second)
    assert feats.features.shape == (1, feats.num_steps, 12 if version == "v1.0" else 5, 32)
    assert torch.isfinite(feats.features).all()


def test_explicit_frame_count_pads_to_it_and_long_audio_is_never_cut() -> None:
    encoder = tiny_encoder("v1.5")
    feats = compute_audio_features(as_audio(speech_like(2.0)), encoder, num_video_frames=173)
    assert feats.num_steps == 173 and feats.duration_s == pytest.approx(173 / 25, abs=1e-4)
    longer = compute_audio_features(as_audio(speech_like(2.0)), encoder, num_video_frames=10)
    assert longer.num_steps == 50  # 2 s at 25 Hz; the request for 10 frames does not truncate the audio
    with pytest.raises(AudioInputError):
        compute_audio_features(as_audio(speech_like(2.0)), encoder, num_video_frames=0)


def test_v10_seed_reproduces_and_differs_and_noise_can_be_injected() -> None:
    encoder = tiny_encoder("v1.0")
    audio = as_audio(speech_like(1.0))
    a = compute_audio_features(audio, encoder, num_video_frames=20, seed=7).features
    b = compute_audio_features(audio, encoder, num_video_frames=20, seed=7).features
    c = compute_audio_features(audio, encoder, num_video_frames=20, seed=8).features
    assert torch.equal(a, b) and not torch.equal(a, c)
    injected = compute_audio_features(audio, encoder, num_video_frames=20, noise=noise_floor(20000, 7)).features
    assert torch.equal(a, injected)
    with pytest.raises(AudioInputError, match="one value per sample"):
        compute_audio_features(audio, encoder, num_video_frames=20, noise=np.zeros(5))


def test_noise_floor_is_minus_45_dbfs_white_noise() -> None:
    noise = noise_floor(200000, 3)
    assert abs(np.sqrt(np.mean(noise**2)) - 10 ** (-45 / 20)) < 1e-4
    assert abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.01


@pytest.mark.parametrize("version", ["v1.0", "v1.5"])
def test_all_silent_audio_is_valid_and_skips_loudness(version: str) -> None:
    encoder = tiny_encoder(version)
    silence = np.zeros(32000, np.float32)
    trace: dict = {}
    emb = embed_speech(silence, encoder, noise=np.zeros(32000), trace=trace)
    assert torch.equal(trace["loudness_normalized"], torch.zeros(32000, dtype=trace["loudness_normalized"].dtype))
    assert torch.isfinite(emb).all()
    feats = compute_audio_features(as_audio(silence), encoder)
    assert torch.isfinite(feats.features).all()


def test_loudness_normalisation_makes_features_gain_invariant() -> None:
    encoder = tiny_encoder("v1.5")
    quiet = compute_audio_features(as_audio(0.05 * speech_like(2.0)), encoder).features
    loud = compute_audio_features(as_audio(2.0 * speech_like(2.0)), encoder).features
    assert (quiet - loud).norm() / loud.norm() < 1e-5


def test_resampling_is_part_of_the_path() -> None:
    """44.1 kHz stereo gives the features of its own mono mix resampled to 16 kHz."""
    from pipeline.audio.features import prepare_track

    encoder = tiny_encoder("v1.5")
    stereo = speech_like(2.0, rate=44100, channels=2)
    direct = compute_audio_features(as_audio(stereo, 44100), encoder).features
    track = prepare_track(as_audio(stereo, 44100))
    via_16k = compute_audio_features(as_audio(track, 16000), encoder).features
    assert torch.equal(direct, via_16k)


def test_very_short_audio_is_padded_to_a_segment_but_too_short_raw_speech_is_refused() -> None:
    encoder = tiny_encoder("v1.0")
    feats = compute_audio_features({"waveform": torch.full((1, 1, 5), 0.2), "sample_rate": 8000}, encoder)
    assert feats.num_frames == 93 and feats.source_duration_s == pytest.approx(10 / 16000)
    with pytest.raises(AudioInputError, match="too short"):
        embed_speech(np.zeros(300, np.float32), encoder)
