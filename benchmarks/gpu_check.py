"""The GPU check: one prepared script for a lent GPU machine; `--tiny --device cpu` runs the same code in CI.

Sections (each in its own try block: a failure is reported and the rest still runs):
1. environment: GPU, memory, torch/CUDA versions, which attention backends and optional packages import;
2. the whole engine on the device with the tiny models (bf16 and fp32); fp32 device vs CPU within 1e-4;
3. the real-size v1.5 DiT (random weights, bf16 and the int8 layout): one 93-frame forward at 512x512 and 480p,
   median of 3 after a warm-up, achieved TFLOP/s against the FLOP formula, peak memory against the estimator;
4. the bf16 DiT under a 24 GB cap through the pack's memory management (ComfyUI's ModelPatcher when importable,
   the engine's block offload otherwise): peak <= cap, seconds vs uncapped, output equal to the uncapped one;
5. the real-size Wan 2.1 VAE decoding one 93-frame 480p segment whole, streamed and tiled;
6. the continuation KV cache on the host vs on the device: equal output, seconds.
The real configs are read from pipeline/memory/configs inside the repository. Writes gpu_report.json to --out
(default $OUT, else the current folder). Pure-Python packages the machine lacks travel as wheels (--wheels DIR:
installed with pip --no-index --no-deps --target into a temporary folder); ComfyUI's comfy/ package is used from
--comfyui DIR (default $COMFYUI_DIR).

Usage: python benchmarks/gpu_check.py [--tiny] [--device cuda|cpu] [--out DIR] [--wheels DIR] [--comfyui DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

OPTIONAL = ("diffusers", "gguf", "ftfy", "soxr", "pyloudnorm", "av", "sageattention", "flash_attn", "comfy")


def install_wheels(folder: Path) -> list[str]:
    """pip-install every wheel of `folder` into a temporary target on sys.path; returns their file names."""
    wheels = sorted(str(p) for p in folder.glob("*.whl"))
    if wheels:
        target = tempfile.mkdtemp(prefix="gpu-check-wheels-")
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target", target]
        subprocess.run([*command, *wheels], check=True)
        sys.path.insert(0, target)
    return [Path(w).name for w in wheels]


def import_comfy(folder: str | None, device: str) -> tuple[Any, str | None]:
    """ComfyUI's model management, ModelPatcher and ops from `folder`, or (None, why not)."""
    if not folder or not (Path(folder) / "comfy").is_dir():
        return None, f"no ComfyUI folder with comfy/ given ({folder!r})"
    sys.path.insert(0, str(folder))
    try:
        import comfy.cli_args

        if device == "cpu":
            comfy.cli_args.args.cpu = True  # before model_management: it looks for a CUDA driver otherwise
        import comfy.model_management
        import comfy.model_patcher
        import comfy.ops
    except Exception as error:  # noqa: BLE001 - any import failure means "run without ComfyUI"
        return None, f"{type(error).__name__}: {error}"
    return SimpleNamespace(
        model_management=comfy.model_management, model_patcher=comfy.model_patcher, ops=comfy.ops
    ), None


def section_environment(ctx: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """1. Versions, the device, which attention backends and optional packages import."""
    import torch

    report = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
              "device": str(ctx.device), "machine": platform.node(), **extra}  # fmt: skip
    if ctx.cuda:
        props = torch.cuda.get_device_properties(ctx.device)
        report.update(gpu=props.name, memory_gb=props.total_memory / 1e9, capability=f"{props.major}.{props.minor}")
        report["sdpa_flash"] = torch.backends.cuda.flash_sdp_enabled()
        report["sdpa_mem_efficient"] = torch.backends.cuda.mem_efficient_sdp_enabled()
    report["importable"] = {name: importlib.util.find_spec(name) is not None for name in OPTIONAL}
    return report


def run_section(name: str, function: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One section in its own try block, with its start time and duration."""
    from gpu_check_common import log

    log(f"section {name}")
    started, begin = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    try:
        result = {"ok": True, **function()}
    except Exception as error:  # noqa: BLE001 - a failed section is reported, the next one still runs
        log(f"section {name} FAILED: {type(error).__name__}: {error}")
        result = {"ok": False, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    result.update(started=started, seconds=round(time.perf_counter() - begin, 3))
    log(f"section {name}: {'ok' if result['ok'] else 'failed'} in {result['seconds']:.1f} s")
    return result


def main(argv: list[str] | None = None) -> int:
    """Run every section and write the JSON report; the exit code is 0 when every section is ok."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models and sizes (CI, CPU)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")), help="report folder")
    parser.add_argument("--wheels", type=Path, help="folder of wheels to install before importing")
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_DIR"), help="ComfyUI folder (with comfy/)")
    args = parser.parse_args(argv)
    started, begin = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    extra = {"wheels": install_wheels(args.wheels) if args.wheels else []}
    comfy, extra["comfy_unavailable"] = import_comfy(args.comfyui, args.device)

    import torch
    from gpu_check_capped import section_capped
    from gpu_check_common import Context
    from gpu_check_dit import section_dit_forward, section_kv_host
    from gpu_check_engine import section_engine
    from gpu_check_vae import section_vae
    from results import git_commit

    ctx = Context(torch.device(args.device), args.tiny, comfy)
    sections = {
        "1_environment": lambda: section_environment(ctx, extra),
        "2_engine_tiny": lambda: section_engine(ctx),
        "3_dit_forward": lambda: section_dit_forward(ctx),
        "6_kv_cache_host": lambda: section_kv_host(ctx),
        "4_capped_24gb": lambda: section_capped(ctx),
        "5_vae_decode": lambda: section_vae(ctx),
    }  # fmt: skip  (6 runs before 4: it uses the int8 model while the bf16 one waits in host memory for 4)
    results = {name: run_section(name, run) for name, run in sections.items()}
    report = {"script": "benchmarks/gpu_check.py", "commit": git_commit(), "started": started,
              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "wall_seconds": round(time.perf_counter() - begin, 1), "tiny": args.tiny, "device": args.device,
              "sections": dict(sorted(results.items()))}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_report.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {args.out / 'gpu_report.json'}")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
