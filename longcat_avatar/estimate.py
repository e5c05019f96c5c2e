"""`estimate`: the memory plan and DiT compute time of a run, from the published configs (nothing is loaded).

The engine is imported only when the command runs, so `import longcat_avatar` stays free of torch.
"""

from __future__ import annotations

import argparse
import sys

from .params import RESOLUTIONS
from .shared import limits, versions
from .tiny_models import PACK_ROOT

# Dense bf16 peak of an NVIDIA A100 (312 TFLOP/s): a well-known reference point; real runs sustain a fraction of
# it, which benchmarks/gpu_check.py measures for a given card.
DEFAULT_TFLOPS = 312.0
GB = 1e9
FORMAT_HELP = "bf16, fp16, fp32, int8, fp8, q8_0, q6_k, q5_k, q4_k, q4_0, q4_k_m, q5_k_m"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `estimate`."""
    add = parser.add_argument
    add("--version", choices=("1.5",), default="1.5", help="model version (the configs shipped are v1.5's)")
    add("--format", default="bf16", help=f"DiT weight format: {FORMAT_HELP} (default bf16)")
    add("--resolution", default="480p", help=f"{', '.join(RESOLUTIONS)} or WIDTHxHEIGHT (default 480p)")
    add("--seconds", type=float, default=10.0, help="video length in seconds (default 10)")
    add("--vram", type=float, help="GPU memory in GB to plan for (default: no limit)")
    full, distill = limits.RECOMMENDED_STEPS[1], versions.get_version(versions.LATEST).distill_steps
    add("--steps", type=int, help=f"denoising steps per segment (default {distill} distilled, {full} with --cfg)")
    add("--cfg", action="store_true", help="full sampling with text and audio guidance (3 passes per step)")
    add("--speakers", type=int, choices=(1, 2), default=1, help="people speaking (default 1)")
    add("--lora-gb", type=float, default=0.0, help="an unmerged LoRA's size in GB (the distillation LoRA's file)")
    add("--tflops", type=float, default=DEFAULT_TFLOPS, help=f"sustained TFLOP/s (default {DEFAULT_TFLOPS:g})")


def _size(resolution: str) -> tuple[int, int]:
    """(height, width) of a resolution name (landscape bucket without a portrait) or WIDTHxHEIGHT."""
    from pipeline.resolution import resolve_size

    if "x" in resolution and resolution not in RESOLUTIONS:
        width, _, height = resolution.partition("x")
        return resolve_size("custom", width=int(width), height=int(height))
    return resolve_size(resolution)


def cmd_estimate(args: argparse.Namespace) -> int:
    """Print the memory plan (resident, offloaded, peak in GB) and the compute time."""
    if str(PACK_ROOT) not in sys.path:
        sys.path.insert(0, str(PACK_ROOT))
    from pipeline.audio.types import version_spec
    from pipeline.memory.estimate import VideoShape, shipped_configs
    from pipeline.memory.plan import estimate_compute, plan_memory, plan_summary
    from pipeline.sampling.schedules import build_schedule, resolve_shift
    from pipeline.sampling.segments import frames_covering, plan_segments

    version = f"v{args.version}"
    try:
        height, width = _size(args.resolution)
        configs = shipped_configs(args.version)
        shape = VideoShape(height, width, configs.text_tokens, guidance=args.cfg, speakers=args.speakers)
        vram = None if args.vram is None else int(args.vram * GB)
        plan = plan_memory(configs, shape, args.format, vram, int(args.lora_gb * GB))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2  # the command line's usage-error code
    distilled = not args.cfg
    distill_steps = versions.get_version(version).distill_steps
    steps = args.steps or (distill_steps if distilled else limits.RECOMMENDED_STEPS[1])  # the reference's 50 when full
    shift = resolve_shift(version)
    first = len(build_schedule(version, steps, distilled, shift))
    later = len(build_schedule(version, steps, distilled, shift, continuation=True))
    segments = plan_segments(frames_covering(args.seconds, version_spec(version).video_fps)).num_segments
    compute = estimate_compute(configs, shape, segments, first, later, args.tflops)
    mode = "text+audio guidance" if args.cfg else "distilled, no guidance"
    print(f"LongCat-Video-Avatar {args.version}, {width}x{height}, {args.seconds:g} s ({mode}):")
    print(plan_summary(plan, compute))
    return 0
