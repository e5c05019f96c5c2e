"""int8 parity: the official int8 folder loaded by the normal loader, in bf16 and float32, plus the float source."""

from __future__ import annotations

import pytest
import torch

from pipeline.checkpoints.dit_loader import load_dit
from pipeline.checkpoints.int8 import Int8Linear
from support import refvec
from support.dit_calls import single_call_kwargs


@pytest.mark.parametrize("case", refvec.case_params("int8"))
def test_int8_forward(case: refvec.RefCase) -> None:
    """bf16 run (official), float32 dequantised run (bf16-rounded non-quantised params), float source run."""
    case = refvec.require_case(case)
    kwargs = single_call_kwargs(case)
    runs = {
        "out.output_dequant_fp32": load_dit(case.model_path("quantized_dir"), dtype=torch.float32),
        "out.output_official_bf16": load_dit(case.model_path("quantized_dir"), dtype=torch.bfloat16),
        "out.output_unquantized_fp32": load_dit(case.model_path("float_source_dir"), dtype=torch.float32),
    }
    for name in ("out.output_dequant_fp32", "out.output_official_bf16"):
        dit = runs[name]
        assert dit.format == "int8" and dit.version == case.version
        int8_layers = [m for m in dit.model.modules() if isinstance(m, Int8Linear)]
        assert int8_layers and all(m.weight_int8.dtype == torch.int8 for m in int8_layers)
    with torch.no_grad():
        produced = {name: dit.model(**kwargs) for name, dit in runs.items()}
    case.compare_all(produced)
