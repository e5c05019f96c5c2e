"""Real-size int8 DiT on the CPU through ComfyUI's ModelPatcher (not run in CI: it needs ~17 GB of free RAM).

The v1.5 DiT in the official int8 layout (15.9 GB) is allocated once, straight in its final dtypes (meta device ->
to_empty -> random values in place), wrapped in a stock `comfy.model_patcher.ModelPatcher` and loaded with a budget
of a few GB (`--budget-gb`), then runs one forward at a tiny token count. Target: peak RSS <= 1.05 x the weight bytes
(no float copy of the weights at any point). The int8 layer holds its data as Parameters with the cast protocol, so
the patcher manages them and offloads what the budget leaves out.

Writes its figures as benchmarks/results/<date>_int8_offload.json (date, commit, machine); `--tiny` (the 2-block
tiny DiT, to check the script in seconds) prints them only, unless --out is given.

Usage: python benchmarks/bench_int8_offload.py [--comfyui DIR] [--budget-gb 3] [--tiny] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

TARGET = 1.05  # peak RSS over the weight bytes
PACK_PACKAGE = "longcat_avatar_pack"  # any name: the pack's modules import each other relatively
GIB = 2**30


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def comfy_modules(folder: str):
    """ComfyUI's model management and ModelPatcher set up for the CPU, and the pack's ComfyUI operations."""
    sys.path.append(folder)  # last: ComfyUI's top-level nodes.py must not shadow the pack's nodes/ package
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before model_management: the CI torch is a CUDA build without a driver
    import comfy.model_management
    import comfy.model_patcher

    package = types.ModuleType(PACK_PACKAGE)  # the repository as the package ComfyUI makes of it, registry not run
    package.__path__ = [str(REPO)]
    sys.modules[PACK_PACKAGE] = package
    comfy_ops = importlib.import_module(f"{PACK_PACKAGE}.nodes.comfy_ops")
    return comfy.model_management, comfy.model_patcher, comfy_ops


def rss_file() -> int:
    """Resident bytes of mapped files (torch's shared libraries, mostly) in this process now; 0 off Linux."""
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("RssFile:"))
    except (OSError, StopIteration):
        return 0
    return int(line.split()[1]) * 1024  # the kernel reports kB


def main() -> int:
    """Build, load with a budget, run one forward, print the RSS figures; exit 1 above the target."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_DIR"), help="ComfyUI folder (with comfy/)")
    parser.add_argument("--budget-gb", type=float, default=3.0, help="lowvram_model_memory of the patcher load")
    parser.add_argument("--tiny", action="store_true", help="the 2-block tiny DiT (checks the script in seconds)")
    parser.add_argument("--out", type=Path, help="report folder (default benchmarks/results, none with --tiny)")
    args = parser.parse_args()
    mm, model_patcher, comfy_ops = comfy_modules(args.comfyui)
    import torch
    from gpu_check_common import Context
    from gpu_check_dit import build_dit, configs_for
    from results import RESULTS_DIR, write_report

    from pipeline.memory.weights import dit_weights

    cpu = torch.device("cpu")
    cfg = configs_for(Context(cpu, tiny=args.tiny)).dit
    weights = dit_weights(cfg, "int8").total
    base = peak_rss()
    start = time.perf_counter()
    ops = comfy_ops.operations(torch.bfloat16, torch.bfloat16, cpu)  # what the DiT loader node builds with
    model = build_dit(Context(cpu, tiny=args.tiny), cfg, int8=True, operations=ops)
    built, after_build = time.perf_counter() - start, peak_rss()
    patcher = model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)
    managed = sum(size for _, size, *_ in patcher._load_list())
    patcher.load(cpu, lowvram_model_memory=int(args.budget_gb * GIB))
    after_load = peak_rss()
    offloaded = sum(mm.module_size(m) for m in model.modules() if getattr(m, "comfy_cast_weights", False))
    inputs = {
        "hidden_states": torch.randn(1, cfg.in_channels, 1, 4, 4), "timestep": torch.full((1,), 500.0),
        "encoder_hidden_states": torch.randn(1, 1, 8, cfg.caption_channels),
        "audio_embs": torch.randn(1, 1, cfg.audio_window, cfg.audio_block, cfg.audio_channel),
    }  # fmt: skip
    with torch.no_grad():
        out = model(**inputs)
    peak = peak_rss()
    figures = {
        "tiny": args.tiny, "budget_gib": args.budget_gb, "weight_gb": weights / 1e9, "build_seconds": built,
        "patcher_managed_gb": managed / 1e9, "offloaded_gb": offloaded / 1e9, "rss_before_build_gb": base / 1e9,
        "peak_after_build_gb": after_build / 1e9, "peak_after_load_gb": after_load / 1e9, "peak_rss_gb": peak / 1e9,
        "peak_over_weights": peak / weights,
        "added_over_weights": (peak - base) / weights, "rss_of_mapped_files_gb": rss_file() / 1e9, "target": TARGET,
        "output_finite": bool(torch.isfinite(out).all()),
    }  # fmt: skip
    print(
        f"int8 DiT: {weights / 1e9:.2f} GB of weights, built in {built:.0f} s; the patcher manages "
        f"{managed / 1e9:.2f} GB, offloaded {offloaded / 1e9:.2f} GB with a {args.budget_gb:g} GiB budget"
    )
    print(f"peak RSS {peak / 1e9:.2f} GB (before building {base / 1e9:.2f} GB) = {peak / weights:.3f} x the weight "
          f"bytes (target <= {TARGET}); output finite: {figures['output_finite']}")  # fmt: skip
    out_dir = args.out or (None if args.tiny else RESULTS_DIR)
    if out_dir is not None:
        print(f"wrote {write_report('int8_offload', figures, out_dir)}")
    return 0 if peak / weights <= TARGET and figures["output_finite"] else 1


if __name__ == "__main__":
    sys.exit(main())
