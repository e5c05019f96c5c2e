"""Decode memory against video length (not run in CI): the sampler's per-segment, streamed decode must stay flat.

For each video length (--lengths, seconds at 25 fps) and mode (untiled streamed, tiled), bench_sampler.py's decode
worker decodes that many segments of random latents with the tiny Wan VAE in a fresh process and reports the peak
resident memory it added. The uint8 output video itself grows with the length (it is the result), so the table shows
the peak minus the output; that remainder is the decode's working memory and should not grow with the length.

Writes its figures as benchmarks/results/<date>_decode_memory.json (date, commit, machine), or under --out.

Usage: python benchmarks/bench_decode_memory.py [--lengths 4 8 16] [--size 64] [--modes untiled tiled] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from results import RESULTS_DIR, write_report

WORKER = Path(__file__).resolve().parent / "bench_sampler.py"
FLAT = 1.10  # working memory of the longest video within 10 % of the shortest's: flat, not growing per segment


def measure(mode: str, seconds: float, size: int, tile: int, stride: int) -> dict:
    """One decode in a fresh process (bench_sampler.py --decode-worker)."""
    command = [sys.executable, str(WORKER), "--decode-worker", mode, "--seconds", str(seconds), "--size", str(size)]
    command += ["--tile", str(tile), "--stride", str(stride)]
    run = subprocess.run(command, capture_output=True, text=True)
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
    flat, figures = True, {"size_px": args.size, "tile_px": args.tile, "stride_px": args.stride, "flat_limit": FLAT}
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
        ratio = working[-1] / max(working[0], 1.0)
        flat &= ratio <= FLAT
        figures[mode] = {"runs": runs, "working_mib": working, "longest_over_shortest": ratio}
        print(f"[decode {mode}] working memory longest/shortest = {ratio:.2f} ({'flat' if ratio <= FLAT else 'GROWS'})")
    figures["flat"] = flat
    print(f"wrote {write_report('decode_memory', figures, args.out)}")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
