"""Frame-rate conversion keeps the duration and shows, at every output instant, the source frame of that instant."""

from __future__ import annotations

import pytest
import torch

from pipeline.video.framerate import (
    convert_frame_rate,
    fit_to_audio_count,
    iter_frame_rate,
    nearest_indices,
    output_frame_count,
)


def _indexed_frames(count: int) -> torch.Tensor:
    """Frames whose every pixel holds the frame index, so the chosen source frame can be read back."""
    return torch.arange(count, dtype=torch.float32).view(count, 1, 1, 1).expand(count, 4, 6, 3).contiguous()


@pytest.mark.parametrize(("count", "source", "target"), [(93, 16, 25), (173, 25, 16), (80, 25, 30), (61, 16, 15)])
def test_duration_is_kept_within_half_an_output_frame(count: int, source: float, target: float) -> None:
    out = output_frame_count(count, source, target)
    assert abs(out / target - count / source) <= 0.5 / target + 1e-9


@pytest.mark.parametrize(("count", "source", "target"), [(93, 16, 25), (173, 25, 16), (80, 25, 30), (50, 25, 24)])
def test_nearest_shows_the_source_frame_displayed_at_each_output_instant(
    count: int, source: float, target: float
) -> None:
    indices = nearest_indices(count, source, target)
    for k, index in enumerate(indices.tolist()):
        centre = (k + 0.5) / target
        if centre < count / source:  # inside the source's time span: the frame on screen at that instant
            assert index / source <= centre + 1e-9 < (index + 1) / source + 1e-9, (k, index)
        else:
            assert index == count - 1
    converted = convert_frame_rate(_indexed_frames(count), source, target, "nearest")
    assert torch.equal(converted[:, 0, 0, 0].long(), indices)


def test_upsampling_16_to_25_repeats_frames_in_order_and_keeps_every_one() -> None:
    indices = nearest_indices(96, 16, 25).tolist()
    assert len(indices) == 150  # 6 s at 16 fps -> 6 s at 25 fps
    assert indices == sorted(indices) and set(indices) == set(range(96))
    assert indices[:8] == [0, 0, 1, 2, 2, 3, 4, 4]  # source frame at (k + 0.5) / 25 s


def test_same_rate_is_identity_and_blend_interpolates_linearly() -> None:
    frames = _indexed_frames(10)
    assert convert_frame_rate(frames, 25, 25, "blend") is frames
    blended = convert_frame_rate(frames, 50, 25, "blend")[:, 0, 0, 0]
    # output frame k is centred at source position 2k + 0.5: the mean of source frames 2k and 2k + 1
    assert torch.allclose(blended, torch.arange(5, dtype=torch.float32) * 2 + 0.5)
    slowed = convert_frame_rate(frames, 16, 24, "blend")[:, 0, 0, 0]
    assert torch.all(slowed[1:] >= slowed[:-1]) and slowed.min() >= 0 and slowed.max() <= 9


def test_bad_rates_and_modes_are_refused() -> None:
    frames = _indexed_frames(3)
    with pytest.raises(ValueError, match="positive"):
        convert_frame_rate(frames, 0, 25)
    with pytest.raises(ValueError, match="mode"):
        convert_frame_rate(frames, 16, 25, "cubic")  # type: ignore[arg-type]
    assert output_frame_count(0, 16, 25) == 0


def test_output_ends_with_the_audio_it_was_made_for() -> None:
    # 5.5168 s of speech -> the sampler makes ceil(5.5168 * 16) = 89 frames (5.5625 s) at 16 fps
    assert output_frame_count(89, 16, 25) == 139  # the frames' own duration would give 139 frames at 25 fps
    assert fit_to_audio_count(89, 16, 25, 5.5168) == 138  # ... but the video ends with the audio: round(137.9)
    assert fit_to_audio_count(89, 16, 25, None) == 139
    assert fit_to_audio_count(89, 16, 25, 3.0) == 139  # unrelated audio (2.5 s shorter): the frames keep their length
    # A tail of one or two frames planned away (3.76 s at 25 fps, 93 frames): the video keeps its length, even within
    # one frame of the audio; Video Combine then cuts the audio to it.
    assert fit_to_audio_count(93, 25, 25, 3.76) == 93 and fit_to_audio_count(93, 25, 30, 3.76) == 112
    converted = convert_frame_rate(_indexed_frames(89), 16, 25, "nearest", count=138)
    assert converted.shape[0] == 138 and converted[-1, 0, 0, 0] == 88  # the last output frame shows frame 88
    assert torch.equal(
        convert_frame_rate(_indexed_frames(10), 25, 25, count=12)[:, 0, 0, 0].long(), torch.tensor([*range(10), 9, 9])
    )


@pytest.mark.parametrize("mode", ["nearest", "blend"])
@pytest.mark.parametrize(
    ("count", "source", "target", "out"), [(89, 16, 25, 138), (40, 25, 16, None), (10, 25, 25, 12)]
)
def test_streamed_frames_equal_the_converted_batch(mode: str, count: int, source: float, target: float, out) -> None:
    frames = torch.rand(count, 3, 4, 3)
    batch = convert_frame_rate(frames, source, target, mode, out)  # type: ignore[arg-type]
    streamed = torch.stack(list(iter_frame_rate(frames, source, target, mode, out)))  # type: ignore[arg-type]
    assert streamed.shape == batch.shape and torch.allclose(streamed, batch, atol=1e-6)
