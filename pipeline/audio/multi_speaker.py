"""Two speakers: per-person feature streams in `para` or `add` mode, plus the silent stream for extra people.

As the reference's multi-speaker demo (run_demo_avatar_multi_audio_to_video.py): a missing speaker is silence of the other's length; `add` plays
the speakers one after the other (speaker 1, then speaker 2, each silent while the other talks); `para` plays them
at the same time. Every stream is padded to the generated length and embedded separately; with extra people one
all-zero ("silent") stream is appended. v1.0's noise floor is drawn from ONE seeded random stream, speaker 1 first,
as the reference's successive calls draw from numpy's global generator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .errors import AudioInputError
from .features import embed_speech, pad_for_generation, prepare_track, target_num_video_frames
from .speaker_masks import NUM_HUMANS
from .types import ENCODER_SAMPLE_RATE, AudioFeatures, version_spec

MODES = ("para", "add")


def arrange_tracks(tracks: Sequence[np.ndarray | None], mode: str) -> list[np.ndarray]:
    """Two 16 kHz tracks laid out on one timeline: `add` = one after the other, `para` = together.

    In `para` mode a shorter track is padded with trailing silence to the longer one (the reference requires
    equal lengths and stops otherwise).
    """
    if mode not in MODES:
        raise AudioInputError(f"multi-speaker mode must be one of {MODES}, got {mode!r}")
    if len(tracks) != NUM_HUMANS:
        raise AudioInputError(
            f"LongCat conditions exactly {NUM_HUMANS} speaking people; got {len(tracks)} audio inputs"
        )
    present = [t for t in tracks if t is not None]
    if not present:
        raise AudioInputError("at least one speaker needs an audio input")
    filled = [t if t is not None else np.zeros_like(present[0]) for t in tracks]
    if mode == "add":
        lengths = [len(t) for t in filled]
        return [
            np.concatenate([np.zeros(sum(lengths[:i]), np.float32), t, np.zeros(sum(lengths[i + 1 :]), np.float32)])
            for i, t in enumerate(filled)
        ]
    longest = max(len(t) for t in filled)
    return [np.pad(t, (0, longest - len(t))) for t in filled]


def merge_for_muxing(audios: Sequence[Mapping[str, Any] | None], mode: str = "para") -> dict[str, Any]:
    """The two speakers mixed into one 16 kHz mono AUDIO for the output video (sum in `para`, sequence in `add`)."""
    arranged = arrange_tracks([prepare_track(a) if a is not None else None for a in audios], mode)
    mixed = np.sum(arranged, axis=0, dtype=np.float32)
    return {"waveform": torch.from_numpy(mixed)[None, None], "sample_rate": ENCODER_SAMPLE_RATE}


def _check_masks(masks: torch.Tensor | None, extra_people: int) -> None:
    """Speaker masks must be [2 + 1 + extra_people, H, W]: human1, human2, background, one per extra person."""
    if masks is None:
        return
    expected = NUM_HUMANS + 1 + extra_people
    if masks.dim() != 3 or masks.shape[0] != expected:
        raise AudioInputError(
            f"speaker masks have shape {tuple(masks.shape)}; with {extra_people} extra people expected "
            f"[{expected}, H, W] (human1, human2, background, others)"
        )


def compute_multi_speaker_features(
    audios: Sequence[Mapping[str, Any] | None],
    encoder,
    mode: str = "para",
    extra_people: int = 0,
    *,
    num_video_frames: int | None = None,
    seed: int = 0,
    noises: Sequence[np.ndarray] | None = None,
    speaker_masks: torch.Tensor | None = None,
) -> AudioFeatures:
    """Features [2 (+1 silent), steps, S, A] of two speakers (an entry may be None = silent speaker)."""
    if extra_people < 0:
        raise AudioInputError(f"extra_people must be >= 0, got {extra_people}")
    _check_masks(speaker_masks, extra_people)
    spec = version_spec(encoder.version)
    tracks = arrange_tracks([prepare_track(a) if a is not None else None for a in audios], mode)
    frames = target_num_video_frames(len(tracks[0]), spec.version, num_video_frames)
    streams = [pad_for_generation(t, spec.version, frames) for t in tracks]
    if extra_people > 0:
        streams.append(np.zeros_like(streams[0]))  # one silent stream shared by every extra person
    if noises is not None and len(noises) != len(streams):
        raise AudioInputError(f"give one noise array per stream ({len(streams)}), got {len(noises)}")
    rng = np.random.RandomState(seed)
    embedded = [
        embed_speech(s, encoder, noise=None if noises is None else noises[i], rng=rng) for i, s in enumerate(streams)
    ]
    return AudioFeatures(
        features=torch.stack(embedded),
        version=spec.version,
        fps=spec.video_fps,
        stride=spec.stride,
        duration_s=len(streams[0]) / ENCODER_SAMPLE_RATE,
        num_speakers=NUM_HUMANS,
        source_duration_s=len(tracks[0]) / ENCODER_SAMPLE_RATE,
        has_silent_stream=extra_people > 0,
        speaker_masks=speaker_masks,
    )
