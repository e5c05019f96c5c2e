"""Scaled fp8 (ComfyUI's format): dequantisation by the formula, a tiny fp8 DiT file that stays fp8 and reproduces its
dequantised model, and a umT5 fp8 file whose Linears stay fp8 in memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pipeline.checkpoints.dit_loader import load_dit
from pipeline.checkpoints.fp8 import Fp8Linear, dequantize_fp8
from pipeline.text.encoder import encode_prompts
from pipeline.text.umt5_loader import FP8_WEIGHT_NAME, load_text_encoder
from support.dit_tiny import rel_l2, tiny_inputs, tiny_model
from support.quant_files import fp8_scaled, save_reference, write_fp8_dit
from support.tiny_models import build_tiny_umt5, write_comfy_umt5_file

PREFIX = "model.diffusion_model."  # how ComfyUI saves diffusion models


@pytest.mark.parametrize("per_row", [False, True])
def test_fp8_dequantize_is_the_formula(per_row: bool) -> None:
    """weight.float() * scale (a scalar, or one per output row), bit for bit in float32; Fp8Linear computes with it."""
    weight = torch.randn(64, 96)
    fp8, scale = fp8_scaled(weight)
    if per_row:
        scale = weight.abs().amax(dim=1) / 448.0
        fp8 = (weight / scale[:, None]).to(torch.float8_e4m3fn)
    expected = fp8.float() * (scale[:, None] if per_row else scale)
    assert torch.equal(dequantize_fp8(fp8, scale, torch.float32), expected)
    layer = Fp8Linear(96, 64, bias=False, dtype=torch.float32, scale_shape=tuple(scale.shape))
    layer.weight = torch.nn.Parameter(fp8, requires_grad=False)
    layer.scale_weight = torch.nn.Parameter(scale, requires_grad=False)
    x = torch.randn(5, 96)
    assert torch.equal(layer(x), F.linear(x, expected))
    assert layer.weight.dtype == torch.float8_e4m3fn and not layer.weight.requires_grad


def test_fp8_dit_file_stays_fp8_and_matches_its_dequantised_weights(tmp_path: Path) -> None:
    """A ComfyUI scaled-fp8 DiT (prefixed keys, marker, an input scale, a plain fp8 layer, an fp8 conv) loads with
    fp8 Linears and reproduces the model of its dequantised weights."""
    model = tiny_model(seed=23)
    unscaled = "blocks.1.ffn.w3.weight"
    reference = write_fp8_dit(
        model.state_dict(), tmp_path / "dit_fp8.safetensors", PREFIX, unscaled, "x_embedder.proj.weight"
    )
    loaded = load_dit(tmp_path / "dit_fp8.safetensors", dtype=torch.float32, version="v1.5")
    dense = load_dit(save_reference(reference, tmp_path / "ref.safetensors"), dtype=torch.float32, version="v1.5")
    assert loaded.format == "fp8" and loaded.key_prefix == PREFIX
    layers = {n: m for n, m in loaded.model.named_modules() if isinstance(m, Fp8Linear)}
    assert "blocks.0.attn.qkv" in layers and all(m.weight.dtype == torch.float8_e4m3fn for m in layers.values())
    assert float(layers[unscaled.removesuffix(".weight")].scale_weight) == 1.0
    assert loaded.model.x_embedder.proj.weight.dtype == torch.float32  # a conv is dequantised on load
    inputs = tiny_inputs(loaded.config, frames=3)
    with torch.no_grad():
        out, ref = loaded.model(**inputs, num_cond_latents=1), dense.model(**inputs, num_cond_latents=1)
    assert rel_l2(out, ref) <= 1e-5


def test_fp8_umt5_file_stays_fp8_in_memory(tmp_path: Path) -> None:
    """umT5 from a scaled-fp8 file: its Linears keep fp8 weights (not widened), and it encodes like the same weights
    dequantised into a plain file."""
    tiny = build_tiny_umt5(tmp_path / "umt5")
    scaled = write_comfy_umt5_file(tiny, tmp_path / "umt5_fp8.safetensors", fp8_scaled=True)
    encoder = load_text_encoder(scaled, dtype=torch.float32)
    fp8 = [m for m in encoder.model.modules() if isinstance(m, Fp8Linear)]
    assert fp8 and all(getattr(m, FP8_WEIGHT_NAME).dtype == torch.float8_e4m3fn for m in fp8)
    assert all(m.weight is None for m in fp8)  # transformers' T5 FFN must not see an fp8 `wo.weight`
    dense_layers = {n: m for n, m in encoder.model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert not any(".layer." in n for n in dense_layers)  # every block Linear of the file stayed fp8
    plain = load_text_encoder(write_comfy_umt5_file(tiny, tmp_path / "umt5.safetensors"), dtype=torch.float32)
    with torch.no_grad():
        for layer in fp8:
            name = next(n for n, m in encoder.model.named_modules() if m is layer)
            plain.model.get_submodule(name).weight.copy_(layer.dequantized_weight(torch.float32))
    prompt = "A person talks to the camera."
    ours, expected = encode_prompts(encoder, [prompt])[0], encode_prompts(plain, [prompt])[0]
    assert rel_l2(ours.embeds, expected.embeds) <= 1e-5
