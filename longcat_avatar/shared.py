"""The pack's torch-free engine modules the client reads: limits, sizes, versions, sampling mode, catalogue, weight-file headers.

Inside ComfyUI the pack is one package and `longcat_avatar` sits beside `pipeline` in it; from the command line
(`python -m longcat_avatar` in the pack's folder) both are top-level packages. Either way the same files are used.
"""

from __future__ import annotations

try:
    from ..pipeline import espeak, limits, model_catalogue, resolution, versions
    from ..pipeline.checkpoints import weight_headers
    from ..pipeline.sampling import mode as sampling
except ImportError:  # `longcat_avatar` is top-level: there is no parent package, `pipeline` is its sibling
    from pipeline import espeak, limits, model_catalogue, resolution, versions
    from pipeline.checkpoints import weight_headers
    from pipeline.sampling import mode as sampling

__all__ = ["espeak", "limits", "model_catalogue", "resolution", "sampling", "versions", "weight_headers"]
