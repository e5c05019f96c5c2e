"""The espeak-ng program: where it is, its version, how to install it (standard library only, no numpy or torch)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

INSTALL_HINT = (
    "Install espeak-ng: `sudo apt-get install espeak-ng` (Debian/Ubuntu), `brew install espeak-ng` (macOS), "
    "or the espeak-ng .msi from https://github.com/espeak-ng/espeak-ng/releases (Windows); or set ESPEAK_NG to the "
    "program's path."
)
TIMEOUT_S = 120  # espeak-ng synthesises ~100x faster than real time; this only catches a hung process


class SpeechError(RuntimeError):
    """espeak-ng is missing, refused the voice or the text, or wrote no audio."""


def find_espeak() -> str | None:
    """Path of the espeak-ng program, or None when it is not installed."""
    configured = os.environ.get("ESPEAK_NG")
    if configured:
        return configured if Path(configured).is_file() else shutil.which(configured)
    return shutil.which("espeak-ng") or shutil.which("espeak")


def require_espeak() -> str:
    """Path of espeak-ng; raises SpeechError saying how to install it."""
    program = find_espeak()
    if program is None:
        raise SpeechError(f"espeak-ng was not found. {INSTALL_HINT}")
    return program


def espeak_version() -> str:
    """The first line of `espeak-ng --version` (raises SpeechError when missing)."""
    result = subprocess.run([require_espeak(), "--version"], capture_output=True, text=True, timeout=TIMEOUT_S)
    return result.stdout.strip().splitlines()[0] if result.stdout.strip() else "unknown version"
