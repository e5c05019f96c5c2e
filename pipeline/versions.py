"""What differs between LongCat-Video-Avatar v1.0 and v1.5, in one table (plain data: importable without torch).

Everything version-specific reads this table: the audio front-end (encoder, feature rate, fps), the DiT's version
detection (audio blocks and channels), the scheduler (default shift, distilled steps, where scheduler/ lives), the
continuation rule of the sampler, the distilled-mode decision, the nodes and the command line.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model_catalogue import HUB, LORA_V15_DMD, REPO_BASE, REPO_V10, REPO_V15, WAV2VEC2, WHISPER


@dataclass(frozen=True)
class VersionSpec:
    """One LongCat-Video-Avatar version, as the reference demos (run_demo_avatar_*_audio_to_video.py) run it."""

    version: str  # "v1.0" / "v1.5"
    official_repo: str  # the hub repository (and the folder under models/longcat/) of its DiT and audio encoder
    encoder_kind: str  # "wav2vec2" or "whisper"
    encoder_name: str  # the audio encoder a user must load (its folder name in the official repository)
    video_fps: int  # the model's native video frame rate (the demo's save_fps)
    stride: int  # audio feature steps per video frame (the demo's audio_stride)
    audio_blocks: int  # the DiT's audio_block: encoder layers (v1.0) or layer groups (v1.5) per feature step
    audio_channels: int  # the DiT's audio_channel: the real encoder's hidden width
    default_shift: float  # flow-matching shift when no scheduler_config.json is found
    distill_steps: int | None  # steps of the DMD distillation LoRA's schedule (None: the version has no such LoRA)
    distill_lora: str | None  # that LoRA inside official_repo (None: none shipped)
    latent_stitching: bool  # continuations denoise with the previous latents (use_vcond) instead of re-encoded frames
    multi_speaker_dit: bool  # one DiT serves one and two speakers (v1.0 ships avatar_single and avatar_multi instead)
    scheduler_repo: str  # the official repository whose scheduler/ folder holds scheduler_config.json

    @property
    def feature_rate(self) -> int:
        """Audio feature steps per second (32 for v1.0, 25 for v1.5)."""
        return self.video_fps * self.stride

    @property
    def encoder_home(self) -> str:
        """The download page of the official repository (it ships the audio encoder too)."""
        return HUB + self.official_repo

    @property
    def distill_lora_path(self) -> str | None:
        """The distillation LoRA as `<repo>/<path>` under models/longcat/, or None."""
        return f"{self.official_repo}/{self.distill_lora}" if self.distill_lora else None


VERSIONS: dict[str, VersionSpec] = {
    # v1.0: chinese-wav2vec2-base (12 layers x 768) resampled to 32 Hz = two steps per 16 fps frame; continuation
    # segments stitch the previous latents (use_vcond=True); no distillation LoRA; LongCat-Video's scheduler/, whose
    # shift a FastVideo mirror of that file gives as 12.0.
    "v1.0": VersionSpec(
        version="v1.0",
        official_repo=REPO_V10,
        encoder_kind="wav2vec2",
        encoder_name=WAV2VEC2.path,
        video_fps=16,
        stride=2,
        audio_blocks=12,
        audio_channels=768,
        default_shift=12.0,
        distill_steps=None,
        distill_lora=None,
        latent_stitching=True,
        multi_speaker_dit=False,
        scheduler_repo=REPO_BASE,
    ),
    # v1.5: whisper-large-v3 (5 layer groups x 1280) at 25 Hz = one step per 25 fps frame; continuations re-encode the
    # last decoded frames (use_vcond=False); the DMD LoRA was trained for exactly 8 steps; its own scheduler/ says 7.0.
    "v1.5": VersionSpec(
        version="v1.5",
        official_repo=REPO_V15,
        encoder_kind="whisper",
        encoder_name=WHISPER.path,
        video_fps=25,
        stride=1,
        audio_blocks=5,
        audio_channels=1280,
        default_shift=7.0,
        distill_steps=8,
        distill_lora=LORA_V15_DMD.path,
        latent_stitching=False,
        multi_speaker_dit=True,
        scheduler_repo=REPO_V15,
    ),
}

ENCODER_KIND_TO_VERSION = {spec.encoder_kind: name for name, spec in VERSIONS.items()}  # "whisper" -> "v1.5"
LATEST = "v1.5"  # the version assumed when nothing says otherwise (the command line's default)


def native_fps_text() -> str:
    """ "16 for v1.0, 25 for v1.5": the native frame rates, for tooltips."""
    return ", ".join(f"{spec.video_fps} for {name}" for name, spec in VERSIONS.items())


def normalize_version(version: str) -> str | None:
    """ "v1.5" for "1.5", "v1.5", "avatar-v1.5", "LongCat-1.5" …; None when it names no known version."""
    key = str(version).strip().lower().removeprefix("avatar-").removeprefix("longcat-")
    key = key if key.startswith("v") else f"v{key}"
    return key if key in VERSIONS else None


def get_version(version: str) -> VersionSpec:
    """The table row of `version` (any spelling normalize_version accepts); ValueError naming the known ones."""
    key = normalize_version(version)
    if key is None:
        raise ValueError(f"unknown LongCat-Video-Avatar version {version!r}; expected one of {', '.join(VERSIONS)}")
    return VERSIONS[key]


def version_for_audio_blocks(audio_blocks: int) -> str | None:
    """The version whose DiT has this audio_block, or None."""
    return next((name for name, spec in VERSIONS.items() if spec.audio_blocks == audio_blocks), None)
