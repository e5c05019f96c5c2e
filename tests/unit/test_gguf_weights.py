"""GGUF: torch dequantisation bit-identical to the `gguf` package for every supported type, and a tiny GGUF DiT file
that loads quantised and reproduces the model of its dequantised weights."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.checkpoints.dit_loader import load_dit
from pipeline.checkpoints.errors import CheckpointError
from pipeline.checkpoints.gguf_weights import SUPPORTED_TYPES, GGUFLinear, dequantize
from pipeline.checkpoints.weight_files import open_weights
from support.dit_tiny import rel_l2, tiny_inputs, tiny_model
from support.quant_files import K_TYPES, LEGACY, random_blocks, reference_dequantize, save_reference, write_gguf_dit

ROWS, COLS = 8, 512  # two K super-blocks per row
WIDE = 256  # hidden size of the tiny GGUF DiT: K types need rows of 256 values


def bits(tensor: torch.Tensor) -> np.ndarray:
    """float32 values as their bit patterns (bitwise comparison, -0.0 != 0.0)."""
    return tensor.contiguous().numpy().view(np.uint32)


@pytest.mark.parametrize("kind", K_TYPES + LEGACY)
def test_gguf_dequantize_random_blocks_bitwise(kind: str) -> None:
    """Random blocks with finite fp16 scales: our torch dequantisation == gguf.quants.dequantize, bit for bit."""
    raw = random_blocks(kind, ROWS, COLS, seed=3)
    ours = dequantize(torch.from_numpy(raw), kind, (ROWS, COLS), torch.float32)
    assert np.array_equal(bits(ours), bits(reference_dequantize(raw, kind, (ROWS, COLS))))


@pytest.mark.parametrize("kind", LEGACY)
def test_gguf_dequantize_quantized_weights_bitwise(kind: str) -> None:
    """Weights quantised by the `gguf` package itself dequantise to the same bits, close to the originals."""
    weight = np.random.default_rng(5).standard_normal((ROWS, COLS)).astype(np.float32)
    raw = gguf.quants.quantize(weight, gguf.GGMLQuantizationType[kind])
    ours = dequantize(torch.from_numpy(raw), kind, (ROWS, COLS), torch.float32)
    assert np.array_equal(bits(ours), bits(reference_dequantize(raw, kind, (ROWS, COLS))))
    assert rel_l2(ours, torch.from_numpy(weight)) < 0.2  # 4-bit types lose most; this is a sanity bound


@pytest.mark.parametrize("kind", ["F16", "BF16"])
def test_gguf_float_types_bitwise(kind: str) -> None:
    """F16 / BF16 tensors read from their bytes = the `gguf` package's conversion."""
    weight = np.random.default_rng(7).standard_normal((ROWS, COLS)).astype(np.float32)
    raw = gguf.quants.quantize(weight, gguf.GGMLQuantizationType[kind])
    ours = dequantize(torch.from_numpy(raw.view(np.uint8)), kind, (ROWS, COLS), torch.float32)
    assert np.array_equal(bits(ours), bits(reference_dequantize(raw, kind, (ROWS, COLS))))


def test_gguf_linear_keeps_blocks_and_computes_with_the_dequantised_weight() -> None:
    """GGUFLinear: raw uint8 blocks as a frozen parameter; forward = F.linear with the dequantised weight."""
    layer = GGUFLinear(COLS, ROWS, bias=True, dtype=torch.float32, type_name="Q5_K")
    raw = torch.from_numpy(random_blocks("Q5_K", ROWS, COLS, seed=11))
    layer.weight = torch.nn.Parameter(raw, requires_grad=False)
    assert isinstance(layer.weight, torch.nn.Parameter) and not layer.weight.requires_grad
    assert layer.weight.dtype == torch.uint8 and "weight" in dict(layer.named_parameters())
    x = torch.randn(3, COLS)
    expected = F.linear(x, reference_dequantize(raw.numpy(), "Q5_K", (ROWS, COLS)), layer.bias)
    assert torch.equal(layer(x), expected)


@pytest.fixture(scope="module")
def gguf_dit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny 256-wide DiT as a GGUF file (mixed K / legacy types, reshaped conv) and its dequantised fp32 twin."""
    folder = tmp_path_factory.mktemp("gguf")
    model = tiny_model(seed=17, hidden_size=WIDE, num_heads=4)
    reference = write_gguf_dit(model.state_dict(), folder / "dit.gguf", conv_key="x_embedder.proj.weight")
    return folder / "dit.gguf", save_reference(reference, folder / "dequantised.safetensors")


def test_gguf_dit_file_matches_its_dequantised_weights(gguf_dit: tuple[Path, Path]) -> None:
    """The GGUF DiT loads with its Linears still in blocks and reproduces the dequantised fp32 model."""
    path, dense_path = gguf_dit
    loaded = load_dit(path, dtype=torch.float32, version="v1.5")
    dense = load_dit(dense_path, dtype=torch.float32, version="v1.5")
    kinds = {m.type_name for m in loaded.model.modules() if isinstance(m, GGUFLinear)}
    assert kinds == set(K_TYPES) | set(LEGACY) and loaded.format == f"gguf ({', '.join(sorted(kinds))})"
    assert all(not p.requires_grad for p in loaded.model.parameters())
    assert loaded.model.get_submodule("blocks.0.ffn.w2").weight.dtype == torch.uint8
    inputs = tiny_inputs(loaded.config, frames=3)
    with torch.no_grad():
        out, ref = loaded.model(**inputs, num_cond_latents=1), dense.model(**inputs, num_cond_latents=1)
    assert rel_l2(out, ref) <= 1e-5


def test_gguf_dit_weights_stay_at_their_file_size(gguf_dit: tuple[Path, Path]) -> None:
    """The quantised model holds the file's tensor bytes (blocks are not widened on load)."""
    path, _ = gguf_dit
    reader = gguf.GGUFReader(str(path))
    file_bytes = sum(int(t.n_bytes) for t in reader.tensors if t.tensor_type.name not in ("F16",))
    model = load_dit(path, dtype=torch.float32, version="v1.5").model
    quantized = sum(p.numel() for m in model.modules() if isinstance(m, GGUFLinear) for p in [m.weight])
    float_bytes = sum(int(t.n_bytes) for t in reader.tensors if t.tensor_type.name == "F32")
    conv = next(t for t in reader.tensors if t.name == "x_embedder.proj.weight")
    assert quantized == file_bytes - float_bytes - int(conv.n_bytes)


def test_gguf_unsupported_type_is_refused_readably(tmp_path: Path) -> None:
    """A tensor type without a dequantiser (here Q2_K) is named, with the supported list."""
    writer = gguf.GGUFWriter(str(tmp_path / "odd.gguf"), "longcat_avatar")
    for key, tensor in tiny_model(seed=2, hidden_size=WIDE, num_heads=4).state_dict().items():
        if key == "blocks.0.ffn.w2.weight":
            values, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q2_K]
            raw = np.zeros((tensor.shape[0], tensor.shape[1] // values * size), dtype=np.uint8)
            writer.add_tensor(key, raw, raw_dtype=gguf.GGMLQuantizationType.Q2_K)
        else:
            writer.add_tensor(key, tensor.numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert open_weights(tmp_path / "odd.gguf").tensors["blocks.0.ffn.w2.weight"].dtype == "Q2_K"
    with pytest.raises(CheckpointError, match=f"w2.weight \\(Q2_K\\).*supported: {', '.join(SUPPORTED_TYPES)}"):
        load_dit(tmp_path / "odd.gguf", version="v1.5")
