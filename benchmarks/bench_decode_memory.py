"""Decode memory against video length (not run in CI): the sampler's per-segment, streamed decode must stay flat.

For each video length (--lengths, seconds at 25 fps) and mode (untiled streamed, tiled), bench_sampler.py's decode
worker decodes that many segments of random latents with the tiny Wan VAE in a fresh process and reports the peak
resident memory it added. The uint8 output video itself grows with the length (it is the result), so the table shows
the peak minus the output; that remainder is the decode's working memory and should not grow with the length. The
workers run with glibc's mmap threshold at 64 KiB, so that freed tensors go back to the system at once and the resident
peak follows the live tensors instead of what the allocator keeps (with the defaults, runs of the same decode differed
by ~100 MiB). Flat means: the longest video's working memory exceeds the shortest's by less than half of one segment's
float frames, which a decode keeping anything per segment would add again with every segment.

Writes its figures as benchmarks/results/<date>_decode_memory.json (date, commit, machine), or under --out.

Usage: python benchmarks/bench_decode_memory.py [--lengths 4 8 16] [--size 64] [--modes untiled tiled] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from results import RESULTS_DIR, write_report

WORKER = Path(__file__).resolve().parent / "bench_sampler.py"
# glibc returns allocations above 64 KiB to the system when they are freed (see the module docstring).
EXACT_RSS = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024), "MALLOC_TRIM_THRESHOLD_": "0"}
FLAT_SEGMENT_FRACTION = 0.5  # allowed growth, as a fraction of one segment's float frames


def measure(mode: str, seconds: float, size: int, tile: int, stride: int) -> dict:
    """One decode in a fresh process (bench_sampler.py --decode-worker)."""
    command = [sys.executable, str(WORKER), "--decode-worker", mode, "--seconds", str(seconds), "--size", str(size)]
    command += ["--tile", str(tile), "--stride", str(stride)]
    run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **EXACT_RSS})
    if run.returncode != 0:
        raise RuntimeError(f"decode worker failed ({mode}, {seconds} s):\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.splitlines()[-1])


def main() -> int:
    """Print the working memory per length and mode, and whether it stays flat."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=float, nargs="+", default=[4.0, 8.0, 16.0])
    parser.add_argument("--size", type=int, default=64, help="frame size in pixels")
    parser.add_argument("--tile", type=int, default=32, help="tile size (px) of the tiled mode")
    parser.add_argument("--stride", type=int, default=24, help="tile stride (px) of the tiled mode")
    parser.add_argument("--modes", nargs="+", choices=("untiled", "tiled"), default=["untiled", "tiled"])
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="report folder")
    args = parser.parse_args()
    flat = True
    figures = {"size_px": args.size, "tile_px": args.tile, "stride_px": args.stride, "malloc_env": EXACT_RSS}
    for mode in args.modes:
        working, runs = [], []
        for seconds in args.lengths:
            result = measure(mode, seconds, args.size, args.tile, args.stride)
            runs.append({"seconds_of_video": seconds, **result})
            working.append(result["peak_added_mib"] - result["frames_mib"])
            print(
                f"[decode {mode}] {seconds:g} s: {result['segments']} segments, peak added "
                f"{result['peak_added_mib']:.0f} MiB, output {result['frames_mib']:.0f} MiB, "
                f"working {working[-1]:.0f} MiB, {result['seconds']:.0f} s",
                flush=True,
            )
        growth, limit = working[-1] - working[0], FLAT_SEGMENT_FRACTION * runs[0]["segment_float_mib"]
        flat &= growth <= limit
        figures[mode] = {"runs": runs, "working_mib": working, "growth_mib": growth, "growth_limit_mib": limit}
        verdict = "flat" if growth <= limit else "GROWS"
        print(f"[decode {mode}] working memory longest - shortest = {growth:.1f} MiB (limit {limit:.1f}): {verdict}")
    figures["flat"] = flat
    print(f"wrote {write_report('decode_memory', figures, args.out)}")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
