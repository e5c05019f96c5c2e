"""The one segment planner: how many segments a video needs, where each starts, what is kept (no torch needed).

The model makes 93-frame segments; each continuation re-generates the previous segment's last 13 frames as clean
conditioning and adds 80 new ones. Audio features follow the reference (`run_demo_avatar_single_audio_to_video.py`):
the speech is zero-padded to whole segments covering it (`reference_frames`), so every frame we generate sees exactly
the features the reference computes for it.

The tail rule. Covering the audio with the fewest whole segments (the reference's rule) can run a whole 93-frame
segment for a frame or two that is then trimmed away: 3.76 s at 25 fps is 94 frames, i.e. a second segment kept for
one frame. When the last segment would keep at most MAX_DROPPED_TAIL_FRAMES new frames, this planner does not
generate it: the video ends with the previous segment and the audio is trimmed to the video (Video Combine fits the
soundtrack to the frames, so the MP4's picture and sound keep one length). We chose that over ending the tail exactly
because the model only makes 4k+1-frame segments and the continuation overlap is fixed (13 frames), so a tail cannot
be shifted or cut to the frame; a shorter tail segment is a length the reference never runs, and its kept frames
(which attend to the whole segment) could not be checked against it. Dropping costs at most two frames of the end of
the speech (80 ms at v1.5's 25 fps, 125 ms at v1.0's 16 fps), where recordings nearly always hold silence.

The precise rule, for audio covering T = frames_covering(duration, fps) frames and segments of F frames with overlap
O (N = F − O new frames each): n = 1 + ceil(max(0, T − F) / N) whole segments cover T; when n > 1 and the last one
would keep T − (F + (n − 2)·N) <= MAX_DROPPED_TAIL_FRAMES frames, n − 1 are generated. The video keeps
min(T, F + (n − 1)·N) frames, and the MP4's audio lasts exactly as long as those frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VAE_TEMPORAL = 4  # Wan 2.1 VAE (diffusers AutoencoderKLWan): 4 video frames per latent frame, plus the first one
# The reference demos generate 93-frame clips (24 latent frames, the training length); each further segment
# re-generates the last 13 frames of the previous one (4 latent frames: 1 + 12/4) as clean conditioning.
SEGMENT_FRAMES = 93
OVERLAP_FRAMES = 13
NEW_FRAMES_PER_SEGMENT = SEGMENT_FRAMES - OVERLAP_FRAMES  # 80
# "A frame or two": a last segment that would keep this many new frames or fewer is not generated (see above).
MAX_DROPPED_TAIL_FRAMES = 2


def latent_frames(num_frames: int) -> int:
    """Latent frames of a 4k+1-frame clip: (F − 1) / 4 + 1."""
    if num_frames < 1 or (num_frames - 1) % VAE_TEMPORAL:
        raise ValueError(f"frame counts must be 4k+1 (the VAE's causal layout), got {num_frames}")
    return (num_frames - 1) // VAE_TEMPORAL + 1


@dataclass(frozen=True)
class SegmentPlan:
    """The segments of one video: sizes in video frames, the first frame of each, and the trimmed length."""

    num_segments: int
    frames_per_segment: int
    overlap_frames: int
    output_frames: int  # frames kept: the audio's frames, less a dropped tail of at most MAX_DROPPED_TAIL_FRAMES
    audio_frames: int  # T: the fewest frames covering the whole audio

    @property
    def new_frames(self) -> int:
        """Frames each continuation segment adds (80 by default)."""
        return self.frames_per_segment - self.overlap_frames

    @property
    def generated_frames(self) -> int:
        """Frames produced before trimming: F + (n − 1)·(F − overlap)."""
        return segment_frames_total(self.num_segments, self.frames_per_segment, self.overlap_frames)

    @property
    def dropped_frames(self) -> int:
        """Frames of audio at the end that get no video (0, or 1..MAX_DROPPED_TAIL_FRAMES when a tail was dropped)."""
        return self.audio_frames - self.output_frames

    @property
    def cond_latents(self) -> int:
        """Clean overlap latents of a continuation: 1 + (overlap − 1)/4 (4 for 13 frames)."""
        return 1 + (self.overlap_frames - 1) // VAE_TEMPORAL

    def start_frame(self, segment: int) -> int:
        """Video frame (on the output clock) where segment `segment` (0-based) starts."""
        return segment * self.new_frames

    def frames_used(self, segment: int) -> int:
        """Leading frames of a segment that the video keeps or the next segment is conditioned on (all but the
        last segment's: its frames past the trimmed end are never shown)."""
        if segment < self.num_segments - 1:
            return self.frames_per_segment
        return max(1, min(self.frames_per_segment, self.output_frames - self.start_frame(segment)))

    def latents_used(self, segment: int) -> int:
        """Leading latent frames that decode to `frames_used` frames: the Wan decoder is causal in time, so frame
        4k depends on latent frames 0..k only and decoding this prefix gives exactly those frames."""
        return 1 + math.ceil((self.frames_used(segment) - 1) / VAE_TEMPORAL)


def frames_covering(duration_s: float, fps: float) -> int:
    """Fewest frames at fps whose duration covers duration_s (float noise below a microframe is ignored)."""
    # Round away float noise first: 3.72 s at 25 fps is exactly 93 frames, not 93.00000000000001.
    return max(1, math.ceil(round(duration_s * fps, 6)))


def whole_segments_covering(num_frames: int, frames_per_segment: int, overlap_frames: int) -> int:
    """Fewest segments whose F + (n − 1)·(F − overlap) frames cover `num_frames` (at least one)."""
    extra = max(0, int(num_frames) - frames_per_segment)
    return 1 + math.ceil(extra / (frames_per_segment - overlap_frames))


def segment_frames_total(num_segments: int, frames_per_segment: int, overlap_frames: int) -> int:
    """Video frames generated by `num_segments` segments: F + (n − 1)·(F − overlap)."""
    if num_segments < 1:
        raise ValueError(f"num_segments must be >= 1, got {num_segments}")
    return frames_per_segment + (num_segments - 1) * (frames_per_segment - overlap_frames)


def reference_frames(duration_s: float, fps: float) -> int:
    """Frames of the reference's whole 93-frame segments covering `duration_s` (what its audio is padded to)."""
    segments = whole_segments_covering(frames_covering(duration_s, fps), SEGMENT_FRAMES, OVERLAP_FRAMES)
    return segment_frames_total(segments, SEGMENT_FRAMES, OVERLAP_FRAMES)


def plan_segments(
    audio_frames: int, frames_per_segment: int = SEGMENT_FRAMES, overlap_frames: int = OVERLAP_FRAMES
) -> SegmentPlan:
    """The segments for `audio_frames` frames of audio under the tail rule; validates the 4k+1 and overlap sizes."""
    latent_frames(frames_per_segment)
    latent_frames(overlap_frames)
    if not 0 < overlap_frames < frames_per_segment:
        raise ValueError(f"overlap_frames must be in 1..{frames_per_segment - 1}, got {overlap_frames}")
    segments = whole_segments_covering(audio_frames, frames_per_segment, overlap_frames)
    if segments > 1:
        before_tail = segment_frames_total(segments - 1, frames_per_segment, overlap_frames)
        if audio_frames - before_tail <= MAX_DROPPED_TAIL_FRAMES:
            segments -= 1
    generated = segment_frames_total(segments, frames_per_segment, overlap_frames)
    return SegmentPlan(
        segments, frames_per_segment, overlap_frames, min(int(audio_frames), generated), int(audio_frames)
    )
