"""Sampler benchmark (not run in CI).

1. Overhead: a multi-segment `generate_video` with a small random DiT (the refvec v1.5 geometry, widened with
   --hidden/--depth) and the tiny Wan VAE. Reports the wall time inside DiT calls, inside the VAE, and everything
   else (schedules, guidance arithmetic, Euler updates, noise, window gathering, frame bookkeeping) as a fraction of
   the sampling time without the VAE (target: under 5 %) and of the total.
2. Decode memory: peak resident memory added by decoding --seconds of video (default 60 s at 25 fps) at --size
   pixels (default 256×256) with the tiny VAE, one segment at a time into uint8 frames, without and with spatial
   tiling; each mode runs in a fresh process so the peaks do not mix.

Usage: python benchmarks/bench_sampler.py [--part overhead|decode|all] [--seconds 60 --size 256]
Slow on CPU: the tiny VAE's 3D convolutions take seconds per latent frame at 256×256 (torch's slow_conv3d path).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from pipeline.audio.types import AudioFeatures  # noqa: E402
from pipeline.dit.config import DiTConfig  # noqa: E402
from pipeline.dit.model import LongCatAvatarDiT  # noqa: E402
from pipeline.sampling.hooks import SamplerHooks  # noqa: E402
from pipeline.sampling.noise import latent_shape  # noqa: E402
from pipeline.sampling.sampler import SamplerSettings, VideoConditioning, decode_segments, generate_video  # noqa: E402
from pipeline.sampling.segments import frames_covering, plan_segments  # noqa: E402
from pipeline.text.encoder import TextEmbedding  # noqa: E402
from pipeline.vae.wan_vae import Tiling, WanVAE  # noqa: E402
from support.tiny_models import build_tiny_vae  # noqa: E402

DEFAULT_REFVEC = REPO.parent / "shared" / "refvec"
FPS, TEXT_TOKENS = 25, 512  # v1.5's native frame rate; the real prompt length


@dataclass
class Timer:
    """Accumulated wall time of one kind of call."""

    seconds: float = 0.0
    calls: int = 0
    _start: float = 0.0

    def start(self, *args: object, **kwargs: object) -> None:
        self._start = time.perf_counter()

    def stop(self, *args: object, **kwargs: object) -> None:
        self.seconds += time.perf_counter() - self._start
        self.calls += 1


class TimedVAE:
    """WanVAE with its encode/decode time accumulated."""

    def __init__(self, vae: WanVAE):
        self.vae, self.timer = vae, Timer()

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        self.timer.start()
        try:
            return self.vae.encode(pixels)
        finally:
            self.timer.stop()

    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        self.timer.start()
        try:
            return self.vae.decode(latents, tiled=tiled)
        finally:
            self.timer.stop()


def small_dit(refvec: Path, hidden: int, depth: int) -> LongCatAvatarDiT:
    """A random DiT with the refvec v1.5 audio/text geometry and the requested width and depth."""
    data = json.loads((refvec / "dit_v1.5" / "config.json").read_text())
    data.update(hidden_size=hidden, depth=depth, num_heads=max(1, hidden // 64))
    torch.manual_seed(0)
    return LongCatAvatarDiT(DiTConfig.from_dict(data)).eval()


def overhead(args: argparse.Namespace) -> None:
    """Part 1: time outside the DiT calls over a multi-segment run."""
    model = small_dit(Path(args.refvec), args.hidden, args.depth)
    dit = Timer()
    model.register_forward_pre_hook(dit.start)
    model.register_forward_hook(dit.stop)
    with tempfile.TemporaryDirectory() as tmp:
        vae = TimedVAE(WanVAE(build_tiny_vae(Path(tmp) / "vae")))
    cfg = model.config
    steps = int(args.video_seconds * FPS) + 200  # features reach past the last generated frame
    features = torch.randn(1, steps, cfg.audio_block, cfg.audio_channel)
    audio = AudioFeatures(features, "v1.5", FPS, 1, steps / FPS, 1, args.video_seconds)
    text = TextEmbedding(
        torch.randn(1, 1, TEXT_TOKENS, cfg.caption_channels), torch.ones(1, TEXT_TOKENS, dtype=torch.long)
    )
    image = torch.rand(1, 3, 1, args.dit_size, args.dit_size) * 2 - 1
    cond = VideoConditioning(text, text, audio, args.dit_size, args.dit_size, image)
    for name, settings in (
        ("distilled 8 steps, 1 pass/step", SamplerSettings(distilled=True, seed=1)),
        ("CFG 4 steps (+enhance_hf tail), 2 calls/step", SamplerSettings(steps=4, seed=1)),
    ):
        dit.seconds = vae.timer.seconds = 0.0
        dit.calls = vae.timer.calls = 0
        begin = time.perf_counter()
        video = generate_video(model, vae, "v1.5", cond, settings, SamplerHooks())
        total = time.perf_counter() - begin
        rest = total - dit.seconds - vae.timer.seconds
        print(
            f"[overhead] {name}: {video.plan.num_segments} segments, {video.frames.shape[0]} frames, "
            f"{dit.calls} DiT calls {dit.seconds:.2f} s, VAE {vae.timer.calls} calls {vae.timer.seconds:.2f} s, "
            f"other {rest:.3f} s = {100 * rest / (total - vae.timer.seconds):.2f} % of sampling without VAE "
            f"(target < 5 %), {100 * rest / total:.2f} % of the total {total:.2f} s"
        )


def decode_worker(mode: str, seconds: float, size: int, tile: int, stride: int) -> dict:
    """In a fresh process: peak RSS added by decoding `seconds` of latents segment by segment."""
    with tempfile.TemporaryDirectory() as tmp:
        vae = WanVAE(build_tiny_vae(Path(tmp) / "vae"), tiling=Tiling(tile, stride))
    plan = plan_segments(frames_covering(seconds, FPS))
    generator = torch.Generator().manual_seed(0)
    latents = [
        torch.randn(latent_shape(plan.frames_per_segment, size, size), generator=generator)
        for _ in range(plan.num_segments)
    ]
    vae.decode(latents[0][:, :, :2], tiled=mode == "tiled")  # warm-up: allocator and kernels
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    begin = time.perf_counter()
    frames = decode_segments(vae, latents, plan, tiled=mode == "tiled")
    elapsed = time.perf_counter() - begin
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "mode": mode,
        "segments": plan.num_segments,
        "frames": int(frames.shape[0]),
        "frames_mib": frames.numel() / 2**20,
        "segment_float_mib": plan.frames_per_segment * size * size * 3 * 4 / 2**20,  # one segment's fp32 RGB frames
        "peak_added_mib": (peak - base) / 1024,
        "seconds": elapsed,
    }


def decode_memory(args: argparse.Namespace) -> None:
    """Part 2: run the decode worker per mode in its own process and print the peaks."""
    for mode in ("untiled", "tiled"):
        command = [sys.executable, __file__, "--decode-worker", mode, "--seconds", str(args.seconds)]
        command += ["--size", str(args.size), "--tile", str(args.tile), "--stride", str(args.stride)]
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            print(f"[decode] {mode}: worker failed ({run.returncode}):\n{run.stderr[-2000:]}")
            continue
        result = json.loads(run.stdout.splitlines()[-1])
        print(
            f"[decode] {result['mode']}: {args.seconds:g} s = {result['frames']} frames of {args.size}x{args.size} "
            f"in {result['segments']} segments, peak RSS added {result['peak_added_mib']:.0f} MiB "
            f"(of which the uint8 frames {result['frames_mib']:.0f} MiB), {result['seconds']:.0f} s"
        )


def main() -> None:
    """Parse the options and run the requested parts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("overhead", "decode", "all"), default="all")
    parser.add_argument("--refvec", default=str(DEFAULT_REFVEC))
    parser.add_argument("--hidden", type=int, default=256, help="DiT width for the overhead run")
    parser.add_argument("--depth", type=int, default=4, help="DiT blocks for the overhead run")
    parser.add_argument("--dit-size", type=int, default=64, help="frame size (px) of the overhead run")
    parser.add_argument("--video-seconds", type=float, default=8.0, help="audio length of the overhead run")
    parser.add_argument("--seconds", type=float, default=60.0, help="video length for the decode-memory run")
    parser.add_argument("--size", type=int, default=256, help="frame size (px) for the decode-memory run")
    parser.add_argument("--tile", type=int, default=256, help="tile size (px) in tiled mode")
    parser.add_argument("--stride", type=int, default=192, help="tile stride (px) in tiled mode")
    parser.add_argument("--decode-worker", choices=("untiled", "tiled"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decode_worker:
        print(json.dumps(decode_worker(args.decode_worker, args.seconds, args.size, args.tile, args.stride)))
        return
    if args.part in ("overhead", "all"):
        overhead(args)
    if args.part in ("decode", "all"):
        decode_memory(args)


if __name__ == "__main__":
    main()
