"""The pack's torch-free engine modules the client reads (the model catalogue).

Inside ComfyUI the pack is one package and `longcat_avatar` sits beside `pipeline` in it; from the command line
(`python -m longcat_avatar` in the pack's folder) both are top-level packages. Either way the same files are used.
"""

from __future__ import annotations

try:
    from ..pipeline import model_catalogue
except ImportError:  # `longcat_avatar` is top-level: there is no parent package, `pipeline` is its sibling
    from pipeline import model_catalogue

__all__ = ["model_catalogue"]
