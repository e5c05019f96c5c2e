"""From a ComfyUI AUDIO to the model's full audio features, in the reference's order of operations.

Order (run_demo_avatar_single_audio_to_video.py, then get_audio_embedding_wav2vec2 / _whisper): mix to mono → resample to 16 kHz (soxr "HQ", librosa's default) → zero-pad to cover the frames
that will be generated → loudness to −23 LUFS (skipped for silence) → the version path (v1.0: −45 dB noise floor,
3 kHz low-pass, wav2vec2 at 32 Hz; v1.5: Whisper layer groups at 25 Hz).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..sampling.segments import reference_frames
from .encoder_files import WAV2VEC2
from .errors import AudioInputError
from .input import audio_to_mono
from .resample import resample_to_16k
from .timing import generation_duration_s, num_feature_steps, pad_to_duration
from .types import ENCODER_SAMPLE_RATE, AudioFeatures, version_spec
from .wav2vec2_features import noise_floor, wav2vec2_embedding
from .whisper_features import whisper_embedding

# The wav2vec2 CNN needs one receptive field (400 samples = 25 ms) to emit a frame; below a feature step nothing
# can be conditioned. Padding to the generated length normally makes tracks far longer than this.
MIN_SAMPLES = 400


def prepare_track(audio: Mapping[str, Any]) -> np.ndarray:
    """A ComfyUI AUDIO as the 16 kHz mono float32 track the reference gets from librosa.load(sr=16000)."""
    mono, rate = audio_to_mono(audio)
    return resample_to_16k(mono, rate)


def target_num_video_frames(num_samples: int, version: str, num_video_frames: int | None) -> int:
    """Frames the features must cover: the given count, or the reference's whole segments covering the audio."""
    spec = version_spec(version)
    if num_video_frames is None:
        return reference_frames(num_samples / ENCODER_SAMPLE_RATE, spec.video_fps)
    if int(num_video_frames) < 1:
        raise AudioInputError(f"num_video_frames must be >= 1, got {num_video_frames}")
    return int(num_video_frames)


def pad_for_generation(track: np.ndarray, version: str, num_video_frames: int) -> np.ndarray:
    """Zero-pad a 16 kHz track to the duration of `num_video_frames` at the version's fps (never truncates)."""
    duration = generation_duration_s(num_video_frames, version_spec(version).video_fps)
    return pad_to_duration(track, duration, ENCODER_SAMPLE_RATE)


def embed_speech(
    speech: np.ndarray,
    encoder,
    *,
    noise: np.ndarray | None = None,
    rng: int | np.random.RandomState = 0,
    trace: dict | None = None,
) -> torch.Tensor:
    """Full embedding [steps, S, A] of an already padded 16 kHz track (the reference's get_audio_embedding).

    v1.0 adds a noise floor: `noise` (already scaled, one value per sample) when given, else drawn from `rng`
    (a seed or a numpy RandomState, so several tracks can share one random stream).
    """
    spec = version_spec(encoder.version)
    if len(speech) < MIN_SAMPLES or num_feature_steps(len(speech), ENCODER_SAMPLE_RATE, spec.feature_rate) < 1:
        raise AudioInputError(
            f"audio too short: {len(speech)} samples at 16 kHz give no feature step; pass num_video_frames to pad it"
        )
    if encoder.kind != WAV2VEC2:
        return whisper_embedding(speech, encoder, trace=trace)
    if noise is None:
        noise = noise_floor(len(speech), rng)
    elif np.shape(noise) != (len(speech),):
        raise AudioInputError(f"noise has shape {np.shape(noise)}; it must have one value per sample ({len(speech)})")
    return wav2vec2_embedding(speech, encoder, noise=np.asarray(noise, dtype=np.float64), trace=trace)


def compute_audio_features(
    audio: Mapping[str, Any],
    encoder,
    *,
    num_video_frames: int | None = None,
    seed: int = 0,
    noise: np.ndarray | None = None,
) -> AudioFeatures:
    """Audio features of one speaker for a generation of `num_video_frames` frames (default: whole segments).

    `seed` makes v1.0's random noise floor reproducible; `noise` injects it instead (length = padded samples).
    """
    spec = version_spec(encoder.version)
    track = prepare_track(audio)
    frames = target_num_video_frames(len(track), spec.version, num_video_frames)
    padded = pad_for_generation(track, spec.version, frames)
    full = embed_speech(padded, encoder, noise=noise, rng=seed)
    return AudioFeatures(
        features=full[None],
        version=spec.version,
        fps=spec.video_fps,
        stride=spec.stride,
        duration_s=len(padded) / ENCODER_SAMPLE_RATE,
        num_speakers=1,
        source_duration_s=len(track) / ENCODER_SAMPLE_RATE,
    )
