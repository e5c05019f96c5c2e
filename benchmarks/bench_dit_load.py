"""Load benchmark for the DiT loader (not run in CI).

Generates a sharded bf16 checkpoint of a few hundred MB and its official int8 folder in a temp dir, then, each in a
fresh process, measures:
  * peak resident memory during `load_dit` (after touching every weight) minus the resident memory before it,
    divided by the checkpoint bytes (target <= 1.05: one copy, no double buffering);
  * the same for the int8 folder relative to its own bytes;
  * load time divided by a plain `safetensors` read (safe_open + get_tensor + touch) of the same files.
Usage: python benchmarks/bench_dit_load.py [--hidden 1024 --depth 8 --shard-mb 100 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.checkpoints.int8 import quantize_model  # noqa: E402
from pipeline.checkpoints.save import save_int8_folder, save_sharded, write_config  # noqa: E402
from pipeline.dit.config import DiTConfig  # noqa: E402
from pipeline.dit.model import LongCatAvatarDiT  # noqa: E402


def status_kb(field: str) -> int:
    """A /proc/self/status memory field in kB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


# One byte per memory page is enough to fault every page of a tensor in, without a temporary copy of the tensor.
PAGE_BYTES = 4096


def touch(tensors) -> int:
    """Read one byte of every page of every tensor (forces the data resident) and return a checksum."""
    return sum(int(t.contiguous().reshape(-1).view(torch.uint8)[::PAGE_BYTES].sum()) for t in tensors if t.numel())


def child(mode: str, folder: Path) -> dict:
    """One measurement in this (fresh) process."""
    from safetensors import safe_open

    from pipeline.checkpoints.dit_loader import load_dit

    files = sorted(p for p in folder.iterdir() if p.suffix == ".safetensors")
    # Warm up torch's lazy process-wide state (thread pool, kernels) so that it is not counted as load memory.
    touch([torch.ones(2**20), torch.ones(2**20, dtype=torch.bfloat16), torch.ones(2**20, dtype=torch.int8)])
    before = status_kb("VmRSS")
    reset_peak()
    start = time.perf_counter()
    if mode == "plain":
        tensors = []
        for file in files:
            with safe_open(str(file), framework="pt") as handle:
                tensors.extend(handle.get_tensor(k) for k in handle.keys())  # noqa: SIM118
        touch(tensors)
    else:
        model = load_dit(folder, dtype=torch.bfloat16)
        touch(model.model.state_dict().values())
        if mode == "int8":
            assert model.format == "int8"
            assert all(t.dtype == torch.int8 for k, t in model.model.state_dict().items() if k.endswith("weight_int8"))
    seconds = time.perf_counter() - start
    peak = status_kb("VmHWM")
    return {"seconds": seconds, "peak_minus_before_bytes": (peak - before) * 1024}


def measure(mode: str, folder: Path) -> dict:
    """Run `child` in a fresh interpreter and return its JSON result."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(folder)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_checkpoints(root: Path, hidden: int, depth: int, shard_mb: int) -> tuple[Path, Path, int, int]:
    """Random bf16 sharded folder and its int8 folder; returns both paths and their weight bytes."""
    config = DiTConfig(
        hidden_size=hidden, depth=depth, num_heads=hidden // 128, caption_channels=hidden, adaln_tembed_dim=256,
        audio_block=5, audio_channel=256, intermediate_dim=256, output_dim=256, context_tokens=8,
        text_tokens_zero_pad=True,
    )  # fmt: skip
    model = LongCatAvatarDiT(config, dtype=torch.bfloat16)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.02)
    dense, int8 = root / "bf16", root / "int8"
    save_sharded(model.state_dict(), dense, shard_mb * 2**20)
    write_config(config, dense)
    quantize_model(model)
    save_int8_folder(model.state_dict(), config, int8, shard_mb * 2**20)
    sizes = [sum(p.stat().st_size for p in f.glob("*.safetensors")) for f in (dense, int8)]
    return dense, int8, sizes[0], sizes[1]


def main() -> None:
    """Generate, measure, print ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--shard-mb", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    with tempfile.TemporaryDirectory(prefix="bench_dit_load_") as tmp:
        dense, int8, dense_bytes, int8_bytes = make_checkpoints(Path(tmp), args.hidden, args.depth, args.shard_mb)
        print(f"checkpoint: bf16 {dense_bytes / 2**20:.1f} MiB in {len(list(dense.glob('*.safetensors')))} shards, "
              f"int8 {int8_bytes / 2**20:.1f} MiB")  # fmt: skip
        results = {}
        for mode, folder in (("plain", dense), ("load", dense), ("plain_int8", int8), ("int8", int8)):
            runs = [measure(mode.removesuffix("_int8"), folder) for _ in range(args.repeats)]
            results[mode] = {k: min(r[k] for r in runs) for k in runs[0]}
        mem = results["load"]["peak_minus_before_bytes"] / dense_bytes
        mem8 = results["int8"]["peak_minus_before_bytes"] / int8_bytes
        speed = results["load"]["seconds"] / results["plain"]["seconds"]
        speed8 = results["int8"]["seconds"] / results["plain_int8"]["seconds"]
        plain_mem = results["plain"]["peak_minus_before_bytes"] / dense_bytes
        print(f"peak RSS growth / checkpoint bytes   bf16: {mem:.3f}   int8: {mem8:.3f}   (target <= 1.05)")
        plain_mem8 = results["plain_int8"]["peak_minus_before_bytes"] / int8_bytes
        print(f"plain safetensors read, same measure bf16: {plain_mem:.3f}   int8: {plain_mem8:.3f}")
        extra = {
            m: (results[m]["peak_minus_before_bytes"] - size) / 2**20
            for m, size in (
                ("load", dense_bytes),
                ("plain", dense_bytes),
                ("int8", int8_bytes),
                ("plain_int8", int8_bytes),
            )
        }
        print("RSS growth beyond the checkpoint bytes (MiB): " + ", ".join(f"{m} {v:.1f}" for m, v in extra.items()))
        print(f"load time / plain safetensors read   bf16: {speed:.2f}   int8: {speed8:.2f}")
        print(f"seconds: load {results['load']['seconds']:.2f}, plain {results['plain']['seconds']:.2f}, "
              f"int8 load {results['int8']['seconds']:.2f}, int8 plain {results['plain_int8']['seconds']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
