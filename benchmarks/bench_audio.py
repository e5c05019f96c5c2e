"""Audio front-end benchmark (not run in CI).

For a speech-like 44.1 kHz stereo clip (default 60 s) it measures, median of a few repeats:
  * preprocessing = everything but the encoder network (mono mix + soxr resample, padding, loudness, v1.0 noise
    floor + low-pass + wav2vec2 input normalisation, v1.5 log-mel chunks), reported as a multiple of real time
    (audio seconds per second of compute) and as a ratio to the bare library calls on the same data (soxr.resample,
    one pyloudnorm measurement, the transformers feature extractor) measured in the same run;
  * encoder network time per second of audio with the tiny encoders of the vector set (wav2vec2 CNN + transformer
    at 32 Hz; Whisper encoder over the 30 s windows, grouping and 25 Hz resampling).
Usage: python benchmarks/bench_audio.py [--seconds 60 --repeats 3 --refvec ../shared/refvec]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyloudnorm
import soxr
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.audio.encoders import load_audio_encoder  # noqa: E402
from pipeline.audio.features import pad_for_generation, prepare_track, target_num_video_frames  # noqa: E402
from pipeline.audio.loudness import normalize_loudness  # noqa: E402
from pipeline.audio.timing import num_feature_steps  # noqa: E402
from pipeline.audio.wav2vec2_features import noise_floor, smooth_transients, wav2vec2_hidden_states  # noqa: E402
from pipeline.audio.whisper_features import log_mel_chunks, whisper_layer_groups  # noqa: E402

SOURCE_RATE = 44100  # a typical ComfyUI LoadAudio rate


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `fn` over `repeats` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speech_like(seconds: float) -> dict:
    """A deterministic stereo AM chirp with noise, as a ComfyUI AUDIO dict at 44.1 kHz."""
    t = np.arange(int(seconds * SOURCE_RATE)) / SOURCE_RATE
    rng = np.random.default_rng(0)
    chans = [
        0.3 * np.sin(2 * np.pi * (150 + 50 * c + 40 * np.sin(t)) * t) * (0.5 + 0.5 * np.sin(6 * t)) for c in (0, 1)
    ]
    wave = np.stack(chans) + 0.01 * rng.standard_normal((2, len(t)))
    return {"waveform": torch.from_numpy(wave.astype(np.float32))[None], "sample_rate": SOURCE_RATE}


def preprocess_v10(audio: dict, encoder) -> tuple[np.ndarray, int]:
    """Every v1.0 step before the network: returns (wav2vec2 input values, feature steps)."""
    track = prepare_track(audio)
    padded = pad_for_generation(track, "v1.0", target_num_video_frames(len(track), "v1.0", None))
    smoothed = smooth_transients(normalize_loudness(padded.astype(np.float64)) + noise_floor(len(padded), 0))
    values = encoder.feature_extractor(smoothed, sampling_rate=16000).input_values[0]
    return values, num_feature_steps(len(padded), 16000, 32)


def preprocess_v15(audio: dict, encoder) -> torch.Tensor:
    """Every v1.5 step before the network: returns the log-mel chunks."""
    track = prepare_track(audio)
    padded = pad_for_generation(track, "v1.5", target_num_video_frames(len(track), "v1.5", None))
    return log_mel_chunks(normalize_loudness(padded), encoder.feature_extractor)


def library_baseline(audio: dict, encoder) -> None:
    """The bare library work of preprocessing on the unpadded audio: soxr, one loudness measurement, the extractor."""
    mono = audio["waveform"][0].mean(0).numpy()
    resampled = soxr.resample(mono, SOURCE_RATE, 16000, quality="HQ")
    pyloudnorm.Meter(16000).integrated_loudness(resampled)
    step = getattr(encoder.feature_extractor, "n_samples", len(resampled))  # Whisper: one call per 30 s chunk
    for start in range(0, len(resampled), step):
        encoder.feature_extractor(resampled[start : start + step], sampling_rate=16000)


def tiny_encoder_dirs(refvec: Path) -> dict[str, Path]:
    """The tiny encoder folders of a vector set (from its audio cases)."""
    import json

    dirs = {}
    for case in json.loads((refvec / "cases.json").read_text())["cases"]:
        if case["kind"] == "audio" and case.get("version"):
            dirs[case["version"]] = refvec / case["models"]["audio_encoder"]
    return dirs


def report(version: str, encoder, audio: dict, seconds: float, repeats: int) -> None:
    """Measure and print preprocessing and encoder-network time for one version."""
    baseline = median_seconds(partial(library_baseline, audio, encoder), repeats)
    if version == "v1.0":
        values, steps = preprocess_v10(audio, encoder)
        pre = median_seconds(partial(preprocess_v10, audio, encoder), repeats)
        net = median_seconds(partial(wav2vec2_hidden_states, encoder.model, values, steps), repeats)
    else:
        mel = preprocess_v15(audio, encoder)
        pre = median_seconds(partial(preprocess_v15, audio, encoder), repeats)
        frames = encoder.feature_extractor.nb_max_frames
        net = median_seconds(partial(whisper_layer_groups, encoder.model, mel, frames), repeats)
    print(
        f"{version}: preprocessing {pre:.3f} s = {seconds / pre:.0f}x real time "
        f"({pre / baseline:.2f}x the bare library calls, {baseline:.3f} s); "
        f"tiny encoder network {net / seconds * 1000:.1f} ms per audio second"
    )


def main() -> None:
    """Run the measurements and print one line per quantity."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--refvec", type=Path, default=REPO.parent / "shared" / "refvec")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    audio = speech_like(args.seconds)
    dirs = tiny_encoder_dirs(args.refvec)
    print(f"audio: {args.seconds:.0f} s stereo at {SOURCE_RATE} Hz, torch threads {torch.get_num_threads()}")
    for version in ("v1.0", "v1.5"):
        encoder = load_audio_encoder(dirs[version], version=version)
        report(version, encoder, audio, args.seconds, args.repeats)


if __name__ == "__main__":
    main()
