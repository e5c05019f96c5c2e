"""ComfyUI imported into the test process (CPU only), and the pack importable as the package ComfyUI makes of it.

`comfy.cli_args.args.cpu` is set before `comfy.model_management` is imported: the CI torch is a CUDA build and would
otherwise look for an NVIDIA driver. ComfyUI's folder goes at the end of sys.path, so its top-level `nodes.py` does
not shadow anything of ours; the pack is imported under PACK_PACKAGE, whose modules (nodes/, pipeline/) then share one
set of classes.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from support.comfy_server import REPO_ROOT, find_comfyui_dir

PACK_PACKAGE = "longcat_pack_under_test"


def comfy() -> Any:
    """The `comfy` package with CPU-only model management imported."""
    root = str(find_comfyui_dir())
    if root not in sys.path:
        sys.path.append(root)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import comfy.model_management
    import comfy.model_patcher
    import comfy.ops

    return comfy


def pack(module: str) -> Any:
    """A module of the pack (e.g. "nodes.comfy_ops"), imported as ComfyUI imports the pack: as a package."""
    comfy()
    if PACK_PACKAGE not in sys.modules:
        package = types.ModuleType(PACK_PACKAGE)
        package.__path__ = [str(REPO_ROOT)]  # a namespace for the pack's folders; its __init__ (node registry) not run
        sys.modules[PACK_PACKAGE] = package
    return importlib.import_module(f"{PACK_PACKAGE}.{module}")
