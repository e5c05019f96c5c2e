"""Window gathering and the padding/frame arithmetic of the audio clock."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.audio.timing import generation_duration_s, pad_to_duration
from pipeline.audio.types import AudioFeatures, version_spec
from pipeline.audio.windows import gather_windows, window_indices
from pipeline.sampling.segments import reference_frames, segment_frames_total, whole_segments_covering


def test_window_indices_v10_stride_2_with_clamping_at_the_start() -> None:
    expected = [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [2, 3, 4, 5, 6]]
    assert window_indices(0, 3, 2, 100).tolist() == expected


def test_window_indices_v15_stride_1_with_clamping_at_the_end() -> None:
    assert window_indices(7, 3, 1, 10).tolist() == [[5, 6, 7, 8, 9], [6, 7, 8, 9, 9], [7, 8, 9, 9, 9]]
    assert window_indices(0, 2, 1, 1).tolist() == [[0] * 5, [0] * 5]


def test_window_indices_are_int64_and_refuse_empty_features() -> None:
    assert window_indices(0, 4, 2, 50).dtype == torch.long
    with pytest.raises(ValueError):
        window_indices(0, 4, 2, 0)


def test_gather_windows_takes_the_indexed_steps_of_every_stream() -> None:
    full = torch.arange(2 * 12 * 3 * 4, dtype=torch.float32).reshape(2, 12, 3, 4)
    windows = gather_windows(full, 4, 5, 2)
    assert windows.shape == (2, 5, 5, 3, 4)
    index = window_indices(4, 5, 2, 12)
    for stream in range(2):
        for frame in range(5):
            for slot in range(5):
                assert torch.equal(windows[stream, frame, slot], full[stream, index[frame, slot]])
    with pytest.raises(ValueError):
        gather_windows(full[0], 0, 5, 2)


def test_audio_features_windows_use_the_version_stride() -> None:
    full = torch.randn(1, 64, 12, 8)
    feats = AudioFeatures(full, "v1.0", fps=16, stride=2, duration_s=2.0, num_speakers=1)
    assert feats.feature_rate == 32 and feats.num_steps == 64 and feats.num_frames == 32
    assert torch.equal(feats.windows(3, 4), gather_windows(full, 6, 4, 2))


def test_version_spellings_and_unknown_versions() -> None:
    assert version_spec("1.5").video_fps == 25 and version_spec("avatar-v1.0").stride == 2
    with pytest.raises(ValueError, match="v1.0"):
        version_spec("v2")


def test_the_reference_pads_the_audio_to_whole_segments() -> None:
    assert segment_frames_total(1, 93, 13) == 93 and segment_frames_total(3, 93, 13) == 253
    assert [whole_segments_covering(n, 93, 13) for n in (1, 93, 94, 173, 174)] == [1, 1, 2, 2, 3]
    assert reference_frames(3.72, 25) == 93  # exactly one segment, despite 3.72·25 = 93.00000000000001
    assert reference_frames(3.73, 25) == 173  # the features cover whole segments even when the planner drops a tail
    assert reference_frames(0.01, 16) == 93
    with pytest.raises(ValueError):
        segment_frames_total(0, 93, 13)


def test_padding_reproduces_the_reference_float_expression() -> None:
    # Demo: generate_duration = 93/25 (+ k·80/25); ceil((3.72 − 2.0)·16000) = 27521, one more than exact arithmetic.
    padded = pad_to_duration(np.ones(32000, np.float32), generation_duration_s(93, 25), 16000)
    assert len(padded) == 32000 + 27521
    assert padded.dtype == np.float32 and padded[32000:].max() == 0 and padded[:32000].min() == 1
    assert generation_duration_s(173, 25) == 93 / 25 + 80 / 25
    assert generation_duration_s(100, 25) == 4.0  # not a whole number of segments: frames / fps


def test_padding_never_truncates() -> None:
    long = np.ones(200000, np.float32)
    assert pad_to_duration(long, 1.0, 16000) is long
