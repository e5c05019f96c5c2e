"""Shared helpers for the audio tests: the tiny encoders of the vector set and synthetic speech-like signals."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch

from support import refvec


@cache
def tiny_encoder_dir(version: str) -> Path:
    """Folder of the tiny audio encoder that the first vector set's `audio` cases of `version` use."""
    for case in refvec.iter_cases("audio"):
        if case.version == version:
            return case.model_path("audio_encoder")
    raise AssertionError(f"no audio case of {version} names a tiny encoder")


@cache
def tiny_encoder(version: str):
    """The tiny encoder of `version`, loaded once through the normal loader (do not mutate it)."""
    from pipeline.audio.encoders import load_audio_encoder

    return load_audio_encoder(tiny_encoder_dir(version), version=version)


def speech_like(seconds: float, rate: int = 16000, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A deterministic chirp with amplitude modulation and a little noise, [channels, samples] float32."""
    t = np.arange(int(round(seconds * rate))) / rate
    rng = np.random.default_rng(seed)
    out = []
    for c in range(channels):
        chirp = np.sin(2 * np.pi * (180 + 60 * c + 400 * t) * t)
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (3 + c) * t)
        out.append(0.3 * chirp * envelope + 0.01 * rng.standard_normal(t.shape))
    return np.stack(out).astype(np.float32)


def as_audio(samples: np.ndarray, rate: int = 16000) -> dict:
    """A ComfyUI AUDIO dict from [samples] or [channels, samples]."""
    array = samples if samples.ndim == 2 else samples[None]
    return {"waveform": torch.from_numpy(np.ascontiguousarray(array))[None], "sample_rate": rate}


def read_audio(path: Path) -> dict:
    """A ComfyUI AUDIO dict of an audio file (through soundfile)."""
    import soundfile

    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return as_audio(samples.T, rate)
