"""MP4 muxing: H.264 yuv420p + AAC, exact durations, colours and sound preserved, sync, metadata, unique names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.video.audio_fit import AudioMuxError, audio_dict_to_array, fit_to_duration, to_aac_rate
from pipeline.video.framerate import convert_frame_rate
from pipeline.video.mux import Mp4Settings, save_mp4, write_mp4
from support.video_probe import decode_audio, decode_frames, probe


def _tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.stack([0.4 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]).astype(np.float32)


def test_mp4_is_h264_yuv420p_aac_with_exact_length(tmp_path: Path) -> None:
    frames = torch.rand(24, 96, 64, 3)  # 1.5 s at the v1.0 native 16 fps
    converted = convert_frame_rate(frames, 16, 25)
    audio = (fit_to_duration(_tone(1.7, 22050), 22050, converted.shape[0] / 25), 22050)  # trimmed to the video
    path = tmp_path / "a.mp4"
    write_mp4(path, converted, 25, audio, {"prompt": json.dumps({"1": {"class_type": "X"}})})
    info = probe(path)
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.width, info.height, info.fps) == (64, 96, 25)
    assert info.frame_count == round(1.5 * 25)
    assert abs(info.audio_duration - 1.5) <= 1 / 25 and abs(info.video_duration - 1.5) <= 1 / 25
    assert json.loads(info.tags["prompt"]) == {"1": {"class_type": "X"}}


def test_colours_and_sound_survive_encoding(tmp_path: Path) -> None:
    colours = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.8, 0.2], [0.2, 0.2, 0.9]])
    frames = colours.repeat_interleave(10, dim=0).view(30, 1, 1, 3).expand(30, 64, 64, 3).contiguous()
    tone = _tone(1.2, 16000, freq=300.0)
    path = tmp_path / "c.mp4"
    write_mp4(path, frames, 25, (tone, 16000), settings=Mp4Settings(crf=19))
    decoded = decode_frames(path).astype(np.float32) / 255
    for index, colour in enumerate(colours):
        mean = decoded[index * 10 + 5].reshape(-1, 3).mean(axis=0)
        assert np.allclose(mean, colour.numpy(), atol=0.03), (index, mean)
    sound, rate = decode_audio(path)
    assert rate == 16000 and sound.shape[0] == 1
    spectrum = np.abs(np.fft.rfft(sound[0, 2000:14000]))
    assert abs(np.argmax(spectrum) * rate / 12000 - 300.0) < 3  # the 300 Hz tone is still a 300 Hz tone
    assert abs(np.sqrt(np.mean(sound[0, 2000:14000] ** 2)) - 0.4 / np.sqrt(2)) < 0.03


def test_lips_stay_in_sync_after_16_to_25_fps(tmp_path: Path) -> None:
    """A white frame at t = 1.0 s and a click at t = 1.0 s still coincide (within one frame) in the MP4."""
    frames = torch.zeros(40, 32, 32, 3)  # 2.5 s at 16 fps
    frames[16] = 1.0  # shown during [1.0, 1.0625) s
    sound = np.zeros((1, 40000), dtype=np.float32)
    sound[0, 16000:16400] = 0.8  # starts at 1.0 s
    path = tmp_path / "s.mp4"
    write_mp4(path, convert_frame_rate(frames, 16, 25), 25, (sound, 16000))
    bright = np.flatnonzero(decode_frames(path).reshape(-1, 32 * 32 * 3).mean(axis=1) > 128)
    decoded, rate = decode_audio(path)
    onset = np.flatnonzero(np.abs(decoded[0]) > 0.4)[0] / rate
    assert len(bright) >= 1 and abs(bright[0] / 25 - 1.0) <= 1 / 25
    assert abs(onset - 1.0) <= 1 / 25


def test_odd_sizes_are_padded_to_even_and_stereo_kept(tmp_path: Path) -> None:
    path = tmp_path / "o.mp4"
    write_mp4(path, torch.full((5, 33, 47, 3), 0.5), 15, (_tone(5 / 15, 44100, channels=2), 44100))
    info = probe(path)
    assert (info.width, info.height, info.channels, info.sample_rate, info.fps) == (48, 34, 2, 44100, 15)


def test_audio_dict_is_normalised_for_aac() -> None:
    five = {"waveform": torch.ones(2, 5, 100) * torch.arange(5).view(1, 5, 1), "sample_rate": 37000}
    samples, rate = audio_dict_to_array(five)
    assert samples.shape == (1, 100) and np.allclose(samples, 1.0)  # mean of channels 0..4 = 2, clipped to 1
    resampled, new_rate = to_aac_rate(_tone(1.0, 37000), 37000)
    assert new_rate == 48000 and abs(resampled.shape[1] - 48000) <= 2
    assert to_aac_rate(samples, 16000)[1] == 16000
    nan = {"waveform": torch.tensor([[[float("nan"), 0.5, 2.0]]]), "sample_rate": 16000}
    assert np.array_equal(audio_dict_to_array(nan)[0], np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    padded = fit_to_duration(np.ones((1, 10), np.float32), 100, 0.15)
    assert padded.shape == (1, 15) and padded[0, 9] == 1 and not padded[0, 10:].any()
    assert fit_to_duration(np.ones((2, 10), np.float32), 100, 0.05).shape == (2, 5)
    for bad in ({"waveform": torch.zeros(1, 0, 10), "sample_rate": 16000}, {"waveform": torch.zeros(1, 1, 10)}):
        with pytest.raises(AudioMuxError):
            audio_dict_to_array(bad)


def test_saved_videos_never_overwrite(tmp_path: Path) -> None:
    first = save_mp4(tmp_path / "sub", "avatar", 1, torch.zeros(2, 16, 16, 3), 25)
    kept = first.read_bytes()
    second = save_mp4(tmp_path / "sub", "avatar", 1, torch.ones(2, 16, 16, 3), 25)
    assert first.name == "avatar_00001_.mp4" and second.name == "avatar_00002_.mp4"
    assert first.read_bytes() == kept and probe(second).frame_count == 2
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == [first.name, second.name]


def test_empty_frames_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        write_mp4(tmp_path / "e.mp4", torch.zeros(0, 8, 8, 3), 25)
