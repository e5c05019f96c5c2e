"""LoRA parity: the official LoRA file on the fly, merged, on the int8 model, and the base model without it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.checkpoints.dit_loader import load_dit
from pipeline.checkpoints.int8 import Int8Linear, quantize_model
from pipeline.checkpoints.lora import apply_lora, lora_patches
from pipeline.dit.model import LongCatAvatarDiT
from support import refvec
from support.dit_calls import single_call_kwargs


def int8_model_for(case: refvec.RefCase) -> LongCatAvatarDiT:
    """The int8 model the LoRA case refers to: the int8 folder of the same set and version (the sidecar's
    "QuantizedLinear layers of int8/<ver>"), or, if the set has none, the same model quantised in memory."""
    folders = [
        c.model_path("quantized_dir")
        for c in refvec.iter_cases("int8")
        if c.root == case.root and c.version == case.version
    ]
    if folders:
        return load_dit(folders[0], dtype=torch.float32).model
    model = load_dit(case.model_path("base_dir"), dtype=torch.float32).model
    quantize_model(model, bf16_dense=True)
    return model


def lora_runs(case: refvec.RefCase, lora: Path) -> dict[str, torch.nn.Module]:
    """The four models of a LoRA case, each built through the public loading API."""
    base = case.model_path("base_dir")
    on_the_fly = load_dit(base, dtype=torch.float32, lora_path=lora)
    merged = load_dit(base, dtype=torch.float32, lora_path=lora, merge_lora=True)
    assert on_the_fly.lora is not None and not on_the_fly.lora.merged and on_the_fly.lora.modules
    assert merged.lora is not None and merged.lora.merged
    assert not any(lora_patches(m) for m in merged.model.modules())
    int8 = int8_model_for(case)
    info = apply_lora(int8, lora)
    assert info.modules == on_the_fly.lora.modules
    assert all(isinstance(int8.get_submodule(name), Int8Linear) for name in info.modules)
    assert all(lora_patches(int8.get_submodule(name)) for name in info.modules)
    return {
        "out.output_lora_fp32": on_the_fly.model,
        "out.output_merged_fp32": merged.model,
        "out.output_lora_int8_dequant_fp32": int8,
        "out.output_no_lora_fp32": load_dit(base, dtype=torch.float32).model,
    }


@pytest.mark.parametrize("case", refvec.case_params("lora"))
def test_lora_forward(case: refvec.RefCase) -> None:
    """Every output of the LoRA case, with the LoRA strength 1 and alpha_scale read from the file."""
    case = refvec.require_case(case)
    kwargs = single_call_kwargs(case)
    runs = lora_runs(case, case.model_path("lora_file"))
    with torch.no_grad():
        produced = {name: model(**kwargs) for name, model in runs.items()}
    case.compare_all(produced)
