"""`doctor`: is this installation ready? torch/CUDA/VRAM, the FFmpeg used for MP4s, espeak-ng, model files per version."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import model_inventory as inv
from .comfy_launcher import PACK_ROOT, find_comfyui
from .shared import espeak
from .shared import model_catalogue as catalogue

MIN_VRAM_GB = 24  # the int8 v1.5 DiT (15.9 GB) plus activations at 480p; less works only with offloading


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: str  # ok, warn, missing, info
    detail: str
    advice: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """doctor's options."""
    parser.add_argument("--comfyui", type=Path, help="the ComfyUI folder (default: $COMFYUI_DIR, else the one this "
                        "pack is installed in)")  # fmt: skip
    parser.add_argument("--models-dir", type=Path, action="append", default=[], help="another models folder to "
                        "search (repeatable), like ComfyUI's --base-directory/models")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--selftest", action="store_true", help="also run the whole graph once in a temporary "
                        "ComfyUI with tiny random models (the video is noise: it proves the installation only)")  # fmt: skip
    parser.add_argument("--keep", type=Path, metavar="DIR", help="with --selftest: keep its MP4 in DIR")


def check_torch() -> list[Check]:
    """torch, CUDA and VRAM (or the CPU / Apple fallback)."""
    try:
        import torch
    except ImportError:
        return [Check("torch", "missing", "not importable", ["install ComfyUI's requirements (it installs torch)"])]
    checks = [Check("torch", "ok", f"{torch.__version__} (Python {platform.python_version()})")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            status = "ok" if total / inv.GB >= MIN_VRAM_GB else "warn"
            detail = f"{torch.cuda.get_device_name(index)}: {total / inv.GB:.1f} GB VRAM ({free / inv.GB:.1f} GB free)"
            advice = [] if status == "ok" else [f"under {MIN_VRAM_GB} GB: use the int8 DiT and expect offloading"]
            checks.append(Check(f"CUDA device {index}", status, detail, advice))
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        checks.append(Check("GPU", "warn", "Apple MPS (unified memory); expect slow generation"))
    else:
        checks.append(Check("GPU", "warn", "no CUDA GPU: real models run impractically slowly on the CPU",
                            ["fine for --selftest and the tests; use an NVIDIA GPU for real videos"]))  # fmt: skip
    return checks


def check_ffmpeg() -> list[Check]:
    """The FFmpeg that writes the MP4s (PyAV's libraries: H.264 and AAC encoders) and any ffmpeg program."""
    try:
        import av
        from av.codec import Codec
    except ImportError:
        return [Check("PyAV", "missing", "not importable", ["pip install av (ComfyUI's requirements include it)"])]
    missing = []
    for codec in ("libx264", "aac"):
        try:
            Codec(codec, "w")
        except Exception:  # PyAV raises UnknownCodecError (or ValueError in older versions)
            missing.append(codec)
    ffmpeg = getattr(av, "ffmpeg_version_info", "unknown")
    detail = f"PyAV {av.__version__} with FFmpeg {ffmpeg} libraries"
    status = "missing" if missing else "ok"
    advice = [f"this PyAV build lacks the {', '.join(missing)} encoder(s); pip install --force-reinstall av"]
    checks = [Check("FFmpeg (MP4 writing)", status, detail + ("" if not missing else f"; lacks {missing}"),
                    advice if missing else [])]  # fmt: skip
    program = shutil.which("ffmpeg")
    checks.append(Check("ffmpeg program", "info", program or "not on PATH (not needed: PyAV writes the MP4s)"))
    return checks


def check_espeak() -> Check:
    """espeak-ng for the Text to Speech node (found as the node finds it)."""
    program = espeak.find_espeak()
    if program is None:
        return Check("espeak-ng", "warn", "not found (only the Text to Speech node needs it)", [espeak.INSTALL_HINT])
    try:
        version = espeak.espeak_version()
    except (OSError, subprocess.SubprocessError) as error:
        return Check("espeak-ng", "warn", f"{program} does not run: {error}")
    return Check("espeak-ng", "ok", f"{program}: {version}")


def check_onnxruntime() -> Check:
    """onnxruntime for the optional vocal separation (any flavour: CPU, CUDA, DirectML, CoreML)."""
    try:
        import onnxruntime
    except ImportError:
        return Check(
            "onnxruntime", "warn", "not installed (only vocal separation needs it)", [catalogue.ONNXRUNTIME_HINT]
        )
    providers = ", ".join(p.removesuffix("ExecutionProvider") for p in onnxruntime.get_available_providers())
    return Check("onnxruntime", "ok", f"{onnxruntime.__version__} ({providers})")


def model_folders(comfyui: Path | None, extra_roots: list[Path]) -> inv.ModelFolders:
    """models/ of ComfyUI and of --models-dir, plus ComfyUI's extra_model_paths.yaml."""
    roots = [Path(r).expanduser().resolve() for r in extra_roots]
    extra: dict[str, list[Path]] = {}
    if comfyui is not None:
        roots.insert(0, comfyui / "models")
        yaml_file = comfyui / "extra_model_paths.yaml"
        if yaml_file.is_file():
            extra = inv.read_extra_model_paths(yaml_file)
    return inv.ModelFolders(roots, extra)


def version_checks(folders: inv.ModelFolders, version: str) -> tuple[list[Check], bool]:
    """One check per component of a version, and whether every required one was found."""
    longcat = next(
        iter(folders.folders("longcat")), folders.model_roots[0] / "longcat" if folders.model_roots else None
    )
    checks, ready = [], True
    for report in inv.inventory(folders, version):
        component = report.component
        name = f"v{version} {component.name}"
        if report.ok:
            places = "; ".join(f"{f.option.label} at {f.path}" for f in report.found)
            checks.append(Check(name, "ok", places))
            continue
        ready = ready and not component.required
        status = "missing" if component.required else "warn"
        detail = "not found" + ("" if component.required else f" (optional: {component.why})")
        checks.append(Check(name, status, detail, inv.download_advice(component, longcat)))
    return checks, ready


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """The whole report as plain data."""
    comfyui = find_comfyui(args.comfyui)
    checks: list[Check] = [
        Check("ComfyUI", "ok" if comfyui else "warn", str(comfyui) if comfyui else "folder not found",
              [] if comfyui else ["pass --comfyui DIR or set COMFYUI_DIR (model folders are searched there)"]),
        Check("LongCat Avatar pack", "info", str(PACK_ROOT)),
    ]  # fmt: skip
    checks += check_torch() + check_ffmpeg() + [check_espeak(), check_onnxruntime()]
    folders = model_folders(comfyui, args.models_dir)
    ready: dict[str, bool] = {}
    for version in ("1.5", "1.0"):
        version_list, ready[version] = version_checks(folders, version)
        checks += version_list
    searched = [str(p) for p in folders.model_roots]
    return {"comfyui": str(comfyui) if comfyui else None, "model_roots": searched, "ready": ready,
            "checks": [vars(c) for c in checks]}  # fmt: skip


def print_report(report: dict[str, Any]) -> None:
    """The report as readable text."""
    marks = {"ok": "[ok]     ", "warn": "[warn]   ", "missing": "[missing]", "info": "[info]   "}
    for check in report["checks"]:
        print(f"{marks[check['status']]} {check['name']}: {check['detail']}")
        for line in check["advice"]:
            print(f"            -> {line}")
    print(f"\nModel folders searched: {', '.join(report['model_roots']) or 'none (pass --comfyui or --models-dir)'}")
    for version, ok in report["ready"].items():
        fetch = f"python -m longcat_avatar download --version {version}"
        print(f"v{version}: {'ready' if ok else f'not ready (download the [missing] files above, or run: {fetch})'}")


def cmd_doctor(args: argparse.Namespace) -> int:
    """`doctor`: print the report (and run the self-test); exit 0 when at least one version is ready."""
    report = collect(args)
    if args.selftest:
        from .selftest import run_selftest

        report["selftest"] = run_selftest(find_comfyui(args.comfyui), keep=args.keep, quiet=args.json)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_report(report)
        if "selftest" in report:
            print(f"\nSelf-test: {report['selftest']['message']}")
    selftest_ok = report.get("selftest", {}).get("ok", True)
    return 0 if selftest_ok and (any(report["ready"].values()) or args.selftest) else 1
