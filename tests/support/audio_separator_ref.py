"""audio-separator, the reference of the vocal-separation tests, in a small virtual environment of its own.

LongCat-Video's demos pin audio-separator 0.30.2, which requires numpy < 2 while ComfyUI's environment has numpy 2,
so it cannot live in the test environment. `reference_python()` builds a venv once (about two minutes, from the
package index pip is configured with) and caches it beside the CI venv, keyed on `audio_separator_requirements.txt`,
the pinned audio-separator and the test environment's path. The venv reuses the test environment's torch through a
`.pth` file appended after its own site-packages, so its numpy 1.x wins and torch (2 GB) is not installed twice.
audio-separator itself is installed without its dependencies: the MDX path imports only those in the requirements
file (its full list also pulls diffq, which needs a compiler).

`run_reference(...)` runs `audio_separator_run.py` in that venv: audio-separator separates files with a model whose
parameter tables the test placed in the model folder, so nothing is fetched from the internet.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

AUDIO_SEPARATOR = "audio-separator==0.30.2"  # LongCat-Video's requirements_avatar.txt pins this version
REQUIREMENTS = Path(__file__).with_name("audio_separator_requirements.txt")
RUNNER = Path(__file__).with_name("audio_separator_run.py")
CACHE_ENV = "LONGCAT_CI_CACHE"  # the CI cache folder (.ci/env.sh uses the same variable and default)
DEFAULT_CACHE = Path.home() / ".cache" / "longcat-avatar-ci"
# Every list Separator.list_supported_model_files reads from download_checks.json.
MODEL_LISTS = (
    "vr_download_list", "mdx_download_list", "mdx_download_vip_list", "demucs_download_list",
    "mdx23c_download_list", "mdx23c_download_vip_list", "roformer_download_list",
)  # fmt: skip
BUILD_TIMEOUT_S = 1800  # a cold build downloads ~250 MB (librosa, numba, onnxruntime, onnx, numpy 1.x)


def _venv_dir() -> Path:
    key_text = f"{REQUIREMENTS.read_text()}\n{AUDIO_SEPARATOR}\n{sys.prefix}\n{sys.version_info[:2]}"
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE) / f"audio-separator-ref-{key}"


def _pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], check=True, timeout=BUILD_TIMEOUT_S)


def reference_python() -> Path:
    """The Python of the cached reference venv, built first if needed (one build at a time, across processes)."""
    root = _venv_dir()
    python = root / "bin" / "python"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / ".complete").is_file():
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True, timeout=BUILD_TIMEOUT_S)
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        # Appended after the venv's own site-packages: torch comes from the test environment, numpy 1.x from here.
        Path(purelib, "zz_test_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        _pip(python, "-r", str(REQUIREMENTS))
        _pip(python, "--no-deps", AUDIO_SEPARATOR)
        (root / ".complete").write_text(f"{AUDIO_SEPARATOR}\n")
    return python


def write_model_tables(model_dir: Path, model_file: str, params: dict[str, object]) -> None:
    """The parameter tables audio-separator would download, for one MDX model file, placed in its model folder.

    `download_checks.json` lists the file as a known MDX model; `mdx_model_data.json` maps the file's hash (the md5
    of its last 10,000 KiB, or of the whole file when smaller, as `Separator.get_model_hash` computes it) to `params`.
    """
    data = (model_dir / model_file).read_bytes()
    tail = 10000 * 1024  # the byte count get_model_hash hashes
    digest = hashlib.md5(data[-tail:] if len(data) >= tail else data).hexdigest()
    checks: dict[str, dict[str, str]] = {name: {} for name in MODEL_LISTS}
    checks["mdx_download_list"] = {"MDX-Net Model: test stand-in": model_file}
    (model_dir / "download_checks.json").write_text(json.dumps(checks))
    (model_dir / "mdx_model_data.json").write_text(json.dumps({digest: params}))
    (model_dir / "vr_model_data.json").write_text("{}")


def run_reference(model_dir: Path, model_file: str, audio_files: list[Path], out_dir: Path) -> list[dict[str, str]]:
    """Separate each file with audio-separator in the reference venv; per file, where its stems were saved."""
    python = reference_python()
    request = {"model_dir": str(model_dir), "model_file": model_file, "out_dir": str(out_dir)}
    request["audio_files"] = [str(p) for p in audio_files]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [str(python), str(RUNNER), json.dumps(request)], capture_output=True, text=True, env=env, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"audio-separator failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
