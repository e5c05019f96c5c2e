"""Plain data of the audio front-end: per-version audio settings and the `AudioFeatures` result."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import AudioEncoderError
from .windows import gather_windows

# Both encoders take 16 kHz mono speech (wav2vec2 and Whisper were trained at 16 kHz).
ENCODER_SAMPLE_RATE = 16000


@dataclass(frozen=True)
class AudioVersionSpec:
    """Audio settings fixed by one LongCat-Video-Avatar version (the demos' --model_type avatar-v1.0 / avatar-v1.5)."""

    version: str
    video_fps: int  # the model's native video frame rate (the demo's save_fps)
    stride: int  # audio feature steps per video frame
    encoder_kind: str  # "wav2vec2" or "whisper"
    encoder_name: str  # what a user must load, for error messages
    encoder_home: str  # where the official copy lives, for error messages

    @property
    def feature_rate(self) -> int:
        """Feature steps per second (32 for v1.0, 25 for v1.5)."""
        return self.video_fps * self.stride


VERSIONS: dict[str, AudioVersionSpec] = {
    # v1.0: chinese-wav2vec2-base features resampled to 32 Hz = two steps per 16 fps video frame.
    "v1.0": AudioVersionSpec(
        "v1.0",
        16,
        2,
        "wav2vec2",
        "chinese-wav2vec2-base",
        "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar",
    ),
    # v1.5: whisper-large-v3 layer groups resampled to 25 Hz = one step per 25 fps video frame.
    "v1.5": AudioVersionSpec(
        "v1.5", 25, 1, "whisper", "whisper-large-v3", "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar-1.5"
    ),
}

ENCODER_KIND_TO_VERSION = {spec.encoder_kind: name for name, spec in VERSIONS.items()}


def version_spec(version: str) -> AudioVersionSpec:
    """The audio settings of `version` ("v1.0"/"v1.5"; "1.0", "avatar-v1.5" and similar spellings accepted)."""
    key = str(version).strip().lower().removeprefix("avatar-").removeprefix("longcat-")
    key = key if key.startswith("v") else f"v{key}"
    if key not in VERSIONS:
        raise AudioEncoderError(f"unknown LongCat-Video-Avatar version {version!r}; expected one of {sorted(VERSIONS)}")
    return VERSIONS[key]


@dataclass
class AudioFeatures:
    """The full audio conditioning of one generation, before per-segment windowing.

    `features` is `[streams, steps, S, A]`: one stream per speaking person (plus one silent stream when extra,
    silent people are conditioned), `steps` feature vectors on the version's feature clock, each made of `S`
    encoder layers (v1.0: 12 wav2vec2 layers) or layer groups (v1.5: 5 Whisper groups) of width `A`.

    What a step is depends on the version:
    - v1.0: features run at 32 Hz, TWO steps per 16 fps video frame (`stride` 2), steps = int(duration_s * 32);
      video frame i is centred on step 2·i.
    - v1.5: features run at 25 Hz, ONE step per 25 fps video frame (`stride` 1), steps = int(duration_s * 25).
    `num_frames` is the number of video frames at `fps` the (padded) audio covers: int(duration_s * fps).
    """

    features: torch.Tensor
    version: str
    fps: int
    stride: int
    duration_s: float  # duration of the padded audio the features were computed from
    num_speakers: int  # speaking streams (the silent extra stream is not counted)
    source_duration_s: float = 0.0  # duration of the longest input audio before padding (trim the video to it)
    has_silent_stream: bool = False  # True when the last stream is the silent one for extra people
    speaker_masks: torch.Tensor | None = None  # [K, H, W] in source-image pixels: human1, human2, background, others…

    @property
    def num_streams(self) -> int:
        """Number of feature streams (speakers plus the optional silent stream)."""
        return int(self.features.shape[0])

    @property
    def num_steps(self) -> int:
        """Length of the feature clock (`features.shape[1]`)."""
        return int(self.features.shape[1])

    @property
    def feature_rate(self) -> int:
        """Feature steps per second: fps * stride (32 for v1.0, 25 for v1.5)."""
        return self.fps * self.stride

    @property
    def num_frames(self) -> int:
        """Video frames at `fps` covered by the padded audio, int(duration_s * fps)."""
        return int(self.duration_s * self.fps)

    def windows(self, start_frame: int, num_frames: int) -> torch.Tensor:
        """Per-frame windows `[streams, num_frames, 5, S, A]` for video frames start_frame .. start_frame+num_frames-1."""
        return gather_windows(self.features, start_frame * self.stride, num_frames, self.stride)
