"""Segment planning: how many 93-frame segments cover the audio, where each one starts, and what is kept."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .noise import VAE_TEMPORAL, latent_frames

# The model was trained on 93-frame clips (24 latent frames). Each further segment re-generates the last 13 frames
# of the previous one (4 latent frames: 1 + 12/4) as clean conditioning, so it adds 93 − 13 = 80 new frames.
SEGMENT_FRAMES = 93
OVERLAP_FRAMES = 13


@dataclass(frozen=True)
class SegmentPlan:
    """The segments of one video: sizes in video frames, the first frame of each, and the trimmed length."""

    num_segments: int
    frames_per_segment: int
    overlap_frames: int
    output_frames: int  # frames kept after trimming to the audio length

    @property
    def new_frames(self) -> int:
        """Frames each continuation segment adds (80 by default)."""
        return self.frames_per_segment - self.overlap_frames

    @property
    def generated_frames(self) -> int:
        """Frames produced before trimming: F + (n − 1)·(F − overlap)."""
        return self.frames_per_segment + (self.num_segments - 1) * self.new_frames

    @property
    def cond_latents(self) -> int:
        """Clean overlap latents of a continuation: 1 + (overlap − 1)/4 (4 for 13 frames)."""
        return 1 + (self.overlap_frames - 1) // VAE_TEMPORAL

    def start_frame(self, segment: int) -> int:
        """Video frame (on the output clock) where segment `segment` (0-based) starts."""
        return segment * self.new_frames


def frames_covering(duration_s: float, fps: float) -> int:
    """Fewest frames at fps whose duration covers duration_s (float noise below a microframe is ignored)."""
    return max(1, math.ceil(round(duration_s * fps, 6)))


def plan_segments(
    output_frames: int, frames_per_segment: int = SEGMENT_FRAMES, overlap_frames: int = OVERLAP_FRAMES
) -> SegmentPlan:
    """Fewest segments whose frames cover output_frames; validates the 4k+1 frame and overlap sizes."""
    latent_frames(frames_per_segment)
    latent_frames(overlap_frames)
    if not 0 < overlap_frames < frames_per_segment:
        raise ValueError(f"overlap_frames must be in 1..{frames_per_segment - 1}, got {overlap_frames}")
    new = frames_per_segment - overlap_frames
    segments = 1 + math.ceil(max(0, output_frames - frames_per_segment) / new)
    return SegmentPlan(segments, frames_per_segment, overlap_frames, int(output_frames))
