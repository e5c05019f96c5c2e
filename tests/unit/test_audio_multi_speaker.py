"""Two speakers: `add` / `para` streams, the silent stream for extra people, the window layout, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.audio.errors import AudioInputError
from pipeline.audio.features import compute_audio_features
from pipeline.audio.multi_speaker import arrange_tracks, compute_multi_speaker_features, merge_for_muxing
from pipeline.audio.speaker_masks import speaker_masks_from_boxes
from pipeline.audio.wav2vec2_features import noise_floor
from support.audio_helpers import as_audio, speech_like, tiny_encoder

FRAMES = 93  # one segment


def _speakers() -> tuple[np.ndarray, np.ndarray]:
    return speech_like(1.5, seed=1)[0], speech_like(1.0, seed=2)[0] * 0.5


def test_add_mode_stream_2_equals_speaker_2_after_speaker_1_silence() -> None:
    encoder = tiny_encoder("v1.5")
    first, second = _speakers()
    feats = compute_multi_speaker_features([as_audio(first), as_audio(second)], encoder, "add", num_video_frames=FRAMES)
    assert feats.features.shape[0] == 2 and feats.num_speakers == 2 and not feats.has_silent_stream
    assert feats.source_duration_s == pytest.approx(2.5)
    delayed_second = np.concatenate([np.zeros_like(first), second])
    alone = compute_audio_features(as_audio(delayed_second), encoder, num_video_frames=FRAMES)
    assert torch.equal(feats.features[1], alone.features[0])
    first_then_silence = np.concatenate([first, np.zeros_like(second)])
    alone = compute_audio_features(as_audio(first_then_silence), encoder, num_video_frames=FRAMES)
    assert torch.equal(feats.features[0], alone.features[0])
    # The two streams carry different speech at different times.
    assert not torch.equal(feats.features[0], feats.features[1])


def test_v10_streams_share_one_seeded_noise_stream_in_speaker_order() -> None:
    encoder = tiny_encoder("v1.0")
    first, second = _speakers()
    feats = compute_multi_speaker_features(
        [as_audio(first), as_audio(second)], encoder, "add", 1, num_video_frames=FRAMES, seed=11
    )
    assert feats.features.shape[:1] == (3,) and feats.has_silent_stream
    rng = np.random.RandomState(11)
    samples = int(round(feats.duration_s * 16000))
    noises = [noise_floor(samples, rng) for _ in range(3)]
    explicit = compute_multi_speaker_features(
        [as_audio(first), as_audio(second)], encoder, "add", 1, num_video_frames=FRAMES, noises=noises
    )
    assert torch.equal(feats.features, explicit.features)
    delayed_second = np.concatenate([np.zeros_like(first), second])
    alone = compute_audio_features(as_audio(delayed_second), encoder, num_video_frames=FRAMES, noise=noises[1])
    assert torch.equal(feats.features[1], alone.features[0])


def test_para_mode_embeds_each_track_alone_and_pads_the_shorter_one() -> None:
    encoder = tiny_encoder("v1.5")
    first, second = _speakers()
    feats = compute_multi_speaker_features(
        [as_audio(first), as_audio(second)], encoder, "para", num_video_frames=FRAMES
    )
    assert feats.source_duration_s == pytest.approx(1.5)
    for stream, track in enumerate((first, second)):
        alone = compute_audio_features(as_audio(track), encoder, num_video_frames=FRAMES)
        assert torch.equal(feats.features[stream], alone.features[0])


def test_missing_speaker_and_extra_people_get_silent_streams() -> None:
    encoder = tiny_encoder("v1.5")
    first, _ = _speakers()
    masks = speaker_masks_from_boxes(80, 104, others=[[0, 0, 10, 10]])
    feats = compute_multi_speaker_features(
        [as_audio(first), None], encoder, "para", extra_people=1, num_video_frames=FRAMES, speaker_masks=masks
    )
    assert feats.num_streams == 3 and feats.speaker_masks is masks
    silence = compute_audio_features(as_audio(np.zeros_like(first)), encoder, num_video_frames=FRAMES)
    assert torch.equal(feats.features[1], silence.features[0])
    assert torch.equal(feats.features[2], silence.features[0])


def test_multi_speaker_windows_keep_stream_order() -> None:
    encoder = tiny_encoder("v1.5")
    first, second = _speakers()
    feats = compute_multi_speaker_features([as_audio(first), as_audio(second)], encoder, "add", 1)
    windows = feats.windows(80, FRAMES)  # segment 2 of a two-segment plan
    assert windows.shape == (3, FRAMES, 5, 5, 32)
    assert torch.equal(windows[1, 0, 2], feats.features[1, 80])  # centre slot = the frame's own feature step
    assert torch.equal(windows[2, -1, 4], feats.features[2, min(80 + FRAMES + 1, feats.num_steps - 1)])


def test_arrange_tracks_layouts() -> None:
    a, b = np.ones(3, np.float32), 2 * np.ones(2, np.float32)
    add = arrange_tracks([a, b], "add")
    assert add[0].tolist() == [1, 1, 1, 0, 0] and add[1].tolist() == [0, 0, 0, 2, 2]
    para = arrange_tracks([a, b], "para")
    assert para[0].tolist() == [1, 1, 1] and para[1].tolist() == [2, 2, 0]
    assert arrange_tracks([None, b], "para")[0].tolist() == [0, 0]


@pytest.mark.parametrize(
    ("audios", "mode", "extra", "message"),
    [
        ([None, None], "para", 0, "at least one speaker"),
        ([1, 2, 3], "para", 0, "exactly 2"),
        ([1], "para", 0, "exactly 2"),
        ([1, 2], "duet", 0, "mode"),
        ([1, 2], "para", -1, "extra_people"),
    ],
)
def test_bad_multi_speaker_requests(audios, mode, extra, message) -> None:
    wave = as_audio(speech_like(0.5)[0])
    audios = [wave if a is not None else None for a in audios]
    with pytest.raises(AudioInputError, match=message):
        compute_multi_speaker_features(audios, tiny_encoder("v1.5"), mode, extra)


def test_mask_count_must_match_the_extra_people() -> None:
    wave = as_audio(speech_like(0.5)[0])
    with pytest.raises(AudioInputError, match=r"\[4, H, W\]"):
        masks = speaker_masks_from_boxes(40, 60)
        compute_multi_speaker_features([wave, wave], tiny_encoder("v1.5"), "para", 1, speaker_masks=masks)


def test_merge_for_muxing_sums_or_concatenates() -> None:
    first, second = _speakers()
    para = merge_for_muxing([as_audio(first), as_audio(second)], "para")
    expected = first + np.pad(second, (0, len(first) - len(second)))
    assert para["sample_rate"] == 16000 and para["waveform"].shape == (1, 1, len(first))
    np.testing.assert_allclose(para["waveform"][0, 0].numpy(), expected, atol=1e-7)
    add = merge_for_muxing([as_audio(first), as_audio(second)], "add")
    np.testing.assert_array_equal(add["waveform"][0, 0].numpy(), np.concatenate([first, second]))
