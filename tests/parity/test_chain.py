"""Chained multi-segment parity: the reference's three-segment videos, from raw pixels, through our own engine.

Every `chain` case of every set is run from its `in.*` tensors alone (see support/chain_run.py): portrait encode,
segment 1, decode to uint8, the overlap frames re-encoded, the next segments, decode, the trimmed video. Every
output the case lists is compared in two modes: end to end (`tolerance_by_output`) and stepwise, each continuation
segment from the STORED previous segment (`tolerance_stepwise`), which keeps every segment as tight as the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from pipeline.audio.windows import window_indices
from support import refvec
from support.chain_run import audio_features, run_end_to_end, run_stepwise, settings_of

CASES = refvec.case_params("chain")
TIMESTEP_ATOL = 1e-3  # the sidecar logs timesteps as float32 values of the reference schedule
CALL_FIELDS = (
    "batch", "T", "num_cond_latents", "return_kv", "skip_crs_attn", "kv_cache", "num_ref_latents", "ref_img_index",
    "mask_frame_range", "audio_batch", "audio_is_zero",
)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread for these tiny tensors: on the shared 2-core CI machine two threads made the tiny VAE's
    conv3d about 10× slower (measured 19 s against 1.4 s for one video's decodes); ops this small gain nothing from splitting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def check_dit_calls(ours: list[dict[str, Any]], case: refvec.RefCase) -> None:
    """The DiT calls of all segments match the reference's log: count, flags, and per-frame timesteps."""
    expected = [call for segment in case.spec["segments"] for call in segment["dit_calls"]]
    assert len(ours) == len(expected), f"{len(ours)} DiT calls, the reference made {len(expected)}"
    for index, (mine, ref) in enumerate(zip(ours, expected, strict=True)):
        for key in CALL_FIELDS:
            assert mine[key] == ref[key], f"DiT call {index}: {key} {mine[key]} != {ref[key]}"
        t = mine["timestep"]
        assert list(t.shape) == ref["timestep_shape"], f"DiT call {index}: timestep shape {list(t.shape)}"
        if ref["timestep_uniform"] is not None:
            expected_t = torch.full_like(t, ref["timestep_uniform"])
        else:
            expected_t = torch.tensor(ref["timestep_row0"]).expand_as(t)
        torch.testing.assert_close(t, expected_t, atol=TIMESTEP_ATOL, rtol=0, msg=f"DiT call {index}: timesteps")


def segment_windows(case: refvec.RefCase) -> list[torch.Tensor]:
    """The reference's audio of each segment: `in.full_audio_emb[in.audio_indices_seg{k}][None]`."""
    full = case.tensor("in.full_audio_emb")
    return [full[case.tensor(f"in.audio_indices_seg{k}")][None] for k in range(1, case.params["num_segments"] + 1)]


@pytest.mark.parametrize("case", CASES)
def test_our_audio_windows_are_the_reference_windows(case: refvec.RefCase) -> None:
    """Our segment starts and window gather over the one full embedding give the stored indices and windows."""
    case = refvec.require_case(case)
    audio, settings, p = audio_features(case), settings_of(case), case.params
    new_frames = settings.frames_per_segment - settings.overlap_frames
    for k, reference in enumerate(segment_windows(case), start=1):
        start = (k - 1) * new_frames
        indices = window_indices(start * audio.stride, p["num_frames"], audio.stride, audio.num_steps)
        assert torch.equal(indices, case.tensor(f"in.audio_indices_seg{k}")), f"segment {k}: window indices"
        assert torch.equal(audio.windows(start, p["num_frames"]), reference), f"segment {k}: windows"


@pytest.mark.parametrize("case", CASES)
def test_chain_end_to_end(case: refvec.RefCase) -> None:
    """The whole video from the raw inputs; every output within the end-to-end tolerance; the reference's calls."""
    case = refvec.require_case(case)
    run = run_end_to_end(case)
    case.compare_all(run.outputs)
    check_dit_calls(run.log.calls, case)
    for k, (ours, reference) in enumerate(zip(run.log.audio, segment_windows(case), strict=True), start=1):
        assert torch.equal(ours, reference), f"segment {k}: the DiT got other audio than the reference's window"


@pytest.mark.parametrize("case", CASES)
def test_chain_stepwise(case: refvec.RefCase) -> None:
    """Each continuation segment from the stored previous segment, within the tight stepwise tolerance."""
    case = refvec.require_case(case)
    run = run_stepwise(case)
    case.compare_all(run.outputs, stepwise=True)
