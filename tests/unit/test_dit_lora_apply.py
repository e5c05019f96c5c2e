"""LoRA: strength, merge vs on-the-fly, int8 targets, removal, and errors for files that do not fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pipeline.checkpoints.dit_loader import load_dit
from pipeline.checkpoints.errors import CheckpointError
from pipeline.checkpoints.int8 import Int8Linear, quantize_model
from pipeline.checkpoints.lora import PREFIX, apply_lora, lora_patches, read_lora, remove_lora
from support.dit_tiny import rel_l2, tiny_inputs, tiny_model

RANK = 8  # small rank for the synthetic LoRA


def lora_key(module: str) -> str:
    """Official key stem of a module path."""
    return PREFIX + module.replace(".", "___lorahyphen___")


def write_lora(path: Path, model: torch.nn.Module, seed: int = 0) -> Path:
    """A random LoRA on attn.qkv (3 split ups), ffn.w2 and adaLN of block 0, alpha_scale 0.5 / 0.25."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for module, parts, alpha in (
        ("blocks.0.attn.qkv", 3, 0.5),
        ("blocks.0.ffn.w2", 1, 0.5),
        ("blocks.0.adaLN_modulation.1", 1, 0.25),
    ):
        layer = model.get_submodule(module)
        stem = lora_key(module)
        tensors[f"{stem}.lora_down.weight"] = torch.randn(parts * RANK, layer.in_features, generator=gen) * 0.1
        if parts == 1:
            tensors[f"{stem}.lora_up.weight"] = torch.randn(layer.out_features, RANK, generator=gen) * 0.1
        for j in range(parts if parts > 1 else 0):
            tensors[f"{stem}.lora_up.blocks.{j}.weight"] = (
                torch.randn(layer.out_features // parts, RANK, generator=gen) * 0.1
            )
        tensors[f"{stem}.alpha_scale"] = torch.tensor(alpha)
    save_file(tensors, str(path))
    return path


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A tiny checkpoint file, a LoRA for it, and inputs."""
    model = tiny_model(seed=21)
    ckpt = tmp_path / "dit.safetensors"
    save_file(model.state_dict(), str(ckpt))
    return ckpt, write_lora(tmp_path / "lora.safetensors", model), tiny_inputs(model.config, frames=3)


def run(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs, num_cond_latents=1)


def test_read_lora_split_ups(setup: tuple) -> None:
    """Split up-projections are kept per output slice; alpha_scale comes from the file."""
    _, lora, _ = setup
    entries = {e.module: e for e in read_lora(lora)}
    qkv = entries["blocks.0.attn.qkv"]
    assert len(qkv.ups) == 3 and qkv.rank == RANK and qkv.alpha_scale == 0.5
    assert entries["blocks.0.adaLN_modulation.1"].alpha_scale == 0.25
    delta = qkv.delta_weight()
    down = qkv.down.chunk(3)
    assert torch.allclose(delta[64:128], 0.5 * qkv.ups[1] @ down[1], atol=1e-6)


@pytest.mark.parametrize("strength", [0.5, 1.0, -0.7])
def test_strength_merge_and_on_the_fly_agree(setup: tuple, strength: float) -> None:
    """W + s*a*up@down merged equals the weight patch; the LoRA has an effect; strength 0 is a no-op."""
    ckpt, lora, inputs = setup
    base = run(load_dit(ckpt, dtype=torch.float32).model, inputs)
    hooked = run(load_dit(ckpt, dtype=torch.float32, lora_path=lora, lora_strength=strength).model, inputs)
    merged = run(
        load_dit(ckpt, dtype=torch.float32, lora_path=lora, lora_strength=strength, merge_lora=True).model, inputs
    )
    assert rel_l2(merged, hooked) < 1e-5
    assert rel_l2(hooked, base) > 1e-3
    zero = run(load_dit(ckpt, dtype=torch.float32, lora_path=lora, lora_strength=0.0).model, inputs)
    assert torch.equal(zero, base)


def test_remove_lora_restores_the_base(setup: tuple) -> None:
    """Detaching the weight patches gives back the base model's output exactly."""
    ckpt, lora, inputs = setup
    loaded = load_dit(ckpt, dtype=torch.float32, lora_path=lora)
    base = run(load_dit(ckpt, dtype=torch.float32).model, inputs)
    assert not torch.equal(run(loaded.model, inputs), base)
    assert remove_lora(loaded.model) == 3
    assert torch.equal(run(loaded.model, inputs), base)
    assert set(loaded.model.state_dict()) == set(load_dit(ckpt).model.state_dict())


def test_lora_on_int8_applies_to_the_dequantised_weights(setup: tuple) -> None:
    """On int8 layers the LoRA patches the dequantised weight; merge_lora is refused readably (it would re-quantise)."""
    ckpt, lora, inputs = setup
    model = load_dit(ckpt, dtype=torch.float32).model
    quantize_model(model)
    with pytest.raises(CheckpointError, match="merge_lora cannot merge into int8 layers"):
        apply_lora(model, lora, merge=True)
    info = apply_lora(model, lora)
    assert len(info.modules) == 3 and all(lora_patches(model.get_submodule(n)) for n in info.modules)
    dense = load_dit(ckpt, dtype=torch.float32).model
    quantize_model(dense)
    plain = run(dense, inputs)
    assert rel_l2(run(model, inputs), plain) > 1e-3


def test_int8_on_load_with_merged_and_unmerged_lora(setup: tuple) -> None:
    """quantize_int8 in load_dit: a merged LoRA is merged before quantising, an unmerged one patches the int8 layers;
    both are close to the dense LoRA model and differ from int8 without the LoRA."""
    ckpt, lora, inputs = setup
    dense = run(load_dit(ckpt, dtype=torch.float32, lora_path=lora).model, inputs)
    merged = load_dit(ckpt, dtype=torch.float32, lora_path=lora, merge_lora=True, quantize_int8=True)
    patched = load_dit(ckpt, dtype=torch.float32, lora_path=lora, quantize_int8=True)
    plain = run(load_dit(ckpt, dtype=torch.float32, quantize_int8=True).model, inputs)
    assert merged.format == patched.format == "single-file, quantised to int8 on load"
    assert merged.lora.merged and not patched.lora.merged
    assert isinstance(patched.model.get_submodule("blocks.0.ffn.w2"), Int8Linear)
    assert lora_patches(patched.model.get_submodule("blocks.0.ffn.w2"))
    for loaded in (merged, patched):
        out = run(loaded.model, inputs)
        assert rel_l2(out, dense) < 2e-2 < rel_l2(out, plain)


def test_lora_for_another_model_fails(tmp_path: Path, setup: tuple) -> None:
    """A LoRA whose shapes do not fit, or a file that is not a LoRA, is a CheckpointError naming the problem."""
    ckpt, _, _ = setup
    other = write_lora(tmp_path / "other.safetensors", tiny_model(seed=1, hidden_size=128, num_heads=4))
    with pytest.raises(CheckpointError, match="belongs to another model"):
        load_dit(ckpt, lora_path=other)
    with pytest.raises(CheckpointError, match="not an official LongCat LoRA"):
        load_dit(ckpt, lora_path=ckpt)
