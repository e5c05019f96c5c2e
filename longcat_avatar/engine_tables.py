"""The engine's plain-data tables for the command line: the version table and the distilled-mode decision.

Both are importable without torch. Inside ComfyUI the pack is one package (`<pack>.pipeline`); run from the command
line, `pipeline` sits beside this package and is put on sys.path when missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:  # inside ComfyUI (and the HTTP route): the pack's own engine package
    from ..pipeline import versions
    from ..pipeline.sampling import mode
except ImportError:  # `python -m longcat_avatar`: longcat_avatar is a top-level package
    PACK_ROOT = str(Path(__file__).resolve().parents[1])
    if PACK_ROOT not in sys.path:
        sys.path.insert(0, PACK_ROOT)
    from pipeline import versions  # type: ignore[no-redef]
    from pipeline.sampling import mode  # type: ignore[no-redef]

__all__ = ["mode", "versions"]
