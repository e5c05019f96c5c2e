"""Real-size int8 DiT on the CPU through ComfyUI's ModelPatcher (not run in CI: it needs ~17 GB of free RAM).

The v1.5 DiT in the official int8 layout (15.9 GB) is allocated once, straight in its final dtypes (meta device ->
to_empty -> random values in place), wrapped in a stock `comfy.model_patcher.ModelPatcher` and loaded with a budget
of a few GB (`--budget-gb`), then runs one forward at a tiny token count. Target: peak RSS <= 1.05 x the weight bytes
(no float copy of the weights at any point).

Today's int8 layer keeps `weight_int8` / `weight_scale` in buffers, which the patcher's `_load_list` never sees:
it reports how many bytes the patcher manages and how many it offloads. Once the int8 layer holds Parameters with
the cast protocol, the same run shows those bytes offloaded (nothing else here changes).

Usage: python benchmarks/bench_int8_offload.py [--comfyui DIR] [--budget-gb 3] [--tiny]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

TARGET = 1.05  # peak RSS over the weight bytes
GIB = 2**30


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def comfy_modules(folder: str):
    """ComfyUI's model management, ModelPatcher and ops, set up for the CPU."""
    sys.path.insert(0, folder)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before model_management: the CI torch is a CUDA build without a driver
    import comfy.model_management
    import comfy.model_patcher
    import comfy.ops

    return comfy.model_management, comfy.model_patcher, comfy.ops


def main() -> int:
    """Build, load with a budget, run one forward, print the RSS figures; exit 1 above the target."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_DIR"), help="ComfyUI folder (with comfy/)")
    parser.add_argument("--budget-gb", type=float, default=3.0, help="lowvram_model_memory of the patcher load")
    parser.add_argument("--tiny", action="store_true", help="the 2-block tiny DiT (checks the script in seconds)")
    args = parser.parse_args()
    mm, model_patcher, ops = comfy_modules(args.comfyui)
    import torch
    from gpu_check_common import Context
    from gpu_check_dit import build_dit, configs_for

    from pipeline.memory.weights import dit_weights

    cpu = torch.device("cpu")
    cfg = configs_for(Context(cpu, tiny=args.tiny)).dit
    weights = dit_weights(cfg, "int8").total
    base = peak_rss()
    start = time.perf_counter()
    model = build_dit(Context(cpu, tiny=args.tiny), cfg, int8=True, operations=ops.disable_weight_init)
    built = time.perf_counter() - start
    patcher = model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)
    managed = sum(size for _, size, *_ in patcher._load_list())
    patcher.load(cpu, lowvram_model_memory=int(args.budget_gb * GIB))
    offloaded = sum(mm.module_size(m) for m in model.modules() if getattr(m, "comfy_cast_weights", False))
    inputs = {
        "hidden_states": torch.randn(1, cfg.in_channels, 1, 4, 4), "timestep": torch.full((1,), 500.0),
        "encoder_hidden_states": torch.randn(1, 1, 8, cfg.caption_channels),
        "audio_embs": torch.randn(1, 1, cfg.audio_window, cfg.audio_block, cfg.audio_channel),
    }  # fmt: skip
    with torch.no_grad():
        out = model(**inputs)
    peak = peak_rss()
    ratio = peak / weights
    print(
        f"int8 DiT: {weights / 1e9:.2f} GB of weights, built in {built:.0f} s; the patcher manages "
        f"{managed / 1e9:.2f} GB, offloaded {offloaded / 1e9:.2f} GB with a {args.budget_gb:g} GiB budget"
    )
    print(f"peak RSS {peak / 1e9:.2f} GB (before building {base / 1e9:.2f} GB) = {ratio:.3f} x the weight bytes "
          f"(target <= {TARGET}); output finite: {bool(torch.isfinite(out).all())}")  # fmt: skip
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
