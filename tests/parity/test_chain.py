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
from support.chain_run import audio_features, run_end_to_end, run_stepwise

CASES = refvec.case_params("chain")
CALL_FIELDS = (
    "batch", "T", "num_cond_latents", "return_kv", "skip_crs_attn", "kv_cache", "num_ref_latents", "ref_img_index",
    "mask_frame_range", "audio_batch", "audio_is_zero",
)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread for these tiny tensors: on the shared 2-core CI machine, two threads made the tiny VAE's
    conv3d about 10× slower (measured 19 s against 1.4 s for one video's decodes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def reference_timesteps(ref: dict[str, Any], ours: torch.Tensor) -> torch.Tensor:
    """A chain sidecar logs each call's timesteps as one uniform value or as the first row (ai2v: frame 0 at 0)."""
    if ref["timestep_uniform"] is not None:
        return torch.full_like(ours, ref["timestep_uniform"])
    return torch.tensor(ref["timestep_row0"]).expand_as(ours)


def segment_windows(case: refvec.RefCase) -> list[torch.Tensor]:
    """The reference's audio of each segment: `in.full_audio_emb[in.audio_indices_seg{k}][None]`."""
    full = case.tensor("in.full_audio_emb")
    return [full[case.tensor(f"in.audio_indices_seg{k}")][None] for k in range(1, case.params["num_segments"] + 1)]


@pytest.mark.parametrize("case", CASES)
def test_our_audio_windows_are_the_reference_windows(case: refvec.RefCase) -> None:
    """Over the one full embedding, our window gather at each segment's start gives the stored indices and windows
    (that the sampler starts each segment there is checked end to end, on the audio the DiT receives)."""
    case = refvec.require_case(case)
    audio, p = audio_features(case), case.params
    for k, reference in enumerate(segment_windows(case), start=1):
        start = p["audio"]["segment_starts"][k - 1]  # in feature steps
        indices = window_indices(start, p["num_frames"], audio.stride, audio.num_steps)
        assert torch.equal(indices, case.tensor(f"in.audio_indices_seg{k}")), f"segment {k}: window indices"
        assert torch.equal(audio.windows(start // audio.stride, p["num_frames"]), reference), f"segment {k}: windows"


@pytest.mark.parametrize("case", CASES)
def test_chain_end_to_end(case: refvec.RefCase) -> None:
    """The whole video from the raw inputs; every output within the end-to-end tolerance; the reference's calls."""
    case = refvec.require_case(case)
    run = run_end_to_end(case)
    case.compare_all(run.outputs)
    expected_calls = [call for segment in case.spec["segments"] for call in segment["dit_calls"]]
    run.log.check(expected_calls, CALL_FIELDS, reference_timesteps)
    for k, (ours, reference) in enumerate(zip(run.log.audio, segment_windows(case), strict=True), start=1):
        assert torch.equal(ours, reference), f"segment {k}: the DiT got other audio than the reference's window"


@pytest.mark.parametrize("case", CASES)
def test_chain_stepwise(case: refvec.RefCase) -> None:
    """Each continuation segment from the stored previous segment, within the tight stepwise tolerance."""
    case = refvec.require_case(case)
    run = run_stepwise(case)
    case.compare_all(run.outputs, stepwise=True)
