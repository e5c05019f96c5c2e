"""Quantised layers (int8, fp8, GGUF) under ComfyUI's own memory manager, in process on the CPU: the cast protocol,
partial ("lowvram") loading that casts exactly the offloaded layers' bytes, and LoRA patches that ComfyUI applies and
removes again."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from support.comfy_inprocess import comfy, pack
from support.dit_tiny import rel_l2
from support.quant_files import fp8_scaled, random_blocks

FORMATS = ("int8", "fp8", "gguf")
# (name, in, out): 256-wide so every GGUF K type fits; sizes differ so a budget splits them into resident and offloaded.
LAYERS = (("up", 256, 1024), ("mid", 1024, 512), ("down", 512, 256), ("head", 256, 256))
DENSE = "head"  # stays a dense ComfyUI Linear (like the int8 format's final layer)
GGUF_TYPES = {"up": "Q4_K", "mid": "Q6_K", "down": "Q5_K"}
CPU = torch.device("cpu")


class Stack(nn.Module):
    """Linears from an operations namespace: three quantised in `fmt`, one dense."""

    def __init__(self, ops: type, fmt: str, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        for name, fan_in, fan_out in LAYERS:
            weight = torch.randn(fan_out, fan_in, generator=gen) / fan_in**0.5
            bias = 0.01 * torch.randn(fan_out, generator=gen)
            setattr(self, name, quantized(ops, fmt, name, weight, bias) if name != DENSE else dense(ops, weight, bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """up -> gelu -> mid -> gelu -> down -> head."""
        return self.head(self.down(F.gelu(self.mid(F.gelu(self.up(x))))))


def frozen(tensor: torch.Tensor) -> nn.Parameter:
    """A parameter without grad."""
    return nn.Parameter(tensor, requires_grad=False)


def dense(ops: type, weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    """A ComfyUI Linear holding `weight`."""
    layer = ops.Linear(weight.shape[1], weight.shape[0], device=CPU, dtype=torch.float32)
    layer.weight, layer.bias = frozen(weight), frozen(bias)
    return layer


def quantized(ops: type, fmt: str, name: str, weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    """A quantised layer of the namespace holding `weight` quantised (GGUF: random K blocks of this shape)."""
    int8 = pack("pipeline.checkpoints.int8")
    out_f, in_f = weight.shape
    if fmt == "int8":
        layer = ops.Int8Linear(in_f, out_f, device=CPU, dtype=torch.float32)
        layer.weight_int8, layer.weight_scale = (frozen(t) for t in int8.quantize_weight(weight))
    elif fmt == "fp8":
        layer = ops.Fp8Linear(in_f, out_f, device=CPU, dtype=torch.float32)
        layer.weight, layer.scale_weight = (frozen(t) for t in fp8_scaled(weight))
    else:
        layer = ops.GGUFLinear(in_f, out_f, device=CPU, dtype=torch.float32, type_name=GGUF_TYPES[name])
        layer.weight = frozen(torch.from_numpy(random_blocks(GGUF_TYPES[name], out_f, in_f, seed=in_f + out_f)))
    layer.bias = frozen(bias)
    return layer


@pytest.fixture(scope="module")
def ops() -> type:
    """The namespace the ComfyUI adapter builds for fp32 weights on the CPU."""
    return pack("nodes.comfy_ops").operations(torch.float32, torch.float32, CPU)


def bytes_of(module: nn.Module) -> int:
    """ComfyUI's size of a module (its state dict)."""
    return comfy().model_management.module_size(module)


def split_budget(model: nn.Module) -> int:
    """A lowvram budget that keeps the largest layer resident but not all: ModelPatcher.load keeps a layer when the
    loaded bytes + its bytes + an offload buffer of its bytes x (NUM_STREAMS + 1) stay below the budget."""
    largest = max(bytes_of(m) for m in model.children())
    return largest * (comfy().model_management.NUM_STREAMS + 2) + 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_cast_protocol_on_every_quantized_layer(ops: type, fmt: str) -> None:
    """Every layer built from the ComfyUI namespace carries the cast protocol; quantised data are frozen parameters."""
    model = Stack(ops, fmt)
    quantized_cls = pack("pipeline.checkpoints.quantized").QuantizedLinear
    for name, module in model.named_children():
        assert hasattr(module, "comfy_cast_weights") and hasattr(module, "weight_function"), name
        assert not list(module.buffers()), name
        assert all(isinstance(p, nn.Parameter) and not p.requires_grad for p in module.parameters())
        assert isinstance(module, quantized_cls) == (name != DENSE)


@pytest.mark.parametrize("fmt", FORMATS)
def test_cast_protocol_on_loaded_dit(ops: type, fmt: str, tmp_path: Path) -> None:
    """load_dit with the ComfyUI namespace builds every quantised layer of an int8 folder / fp8 file / GGUF file
    from it, and every other Linear from ComfyUI's ops."""
    from support.dit_tiny import tiny_model
    from support.quant_files import write_fp8_dit, write_gguf_dit

    model = tiny_model(seed=4, hidden_size=256, num_heads=4)
    path = tmp_path / f"dit.{'gguf' if fmt == 'gguf' else 'safetensors'}"
    if fmt == "gguf":
        write_gguf_dit(model.state_dict(), path, conv_key="x_embedder.proj.weight")
    elif fmt == "fp8":
        write_fp8_dit(model.state_dict(), path, "", "", "x_embedder.proj.weight")
    else:
        pack("pipeline.checkpoints.int8").quantize_model(model, bf16_dense=True)
        save_file(model.state_dict(), str(path))
    loaded = pack("pipeline.checkpoints.dit_loader").load_dit(path, dtype=torch.float32, operations=ops, version="v1.5")
    quantized_cls = pack("pipeline.checkpoints.quantized").QuantizedLinear
    linears = [m for m in loaded.model.modules() if isinstance(m, (nn.Linear, quantized_cls))]
    assert any(isinstance(m, quantized_cls) for m in linears)
    assert all(hasattr(m, "comfy_cast_weights") for m in linears)


@pytest.mark.parametrize("fmt", FORMATS)
def test_lowvram_casts_exactly_the_offloaded_layers(ops: type, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ModelPatcher.load with a budget below the model: a spy on cast_to during one forward sees every stored tensor
    of the offloaded layers once (their bytes exactly) and nothing of the resident ones; the output is unchanged."""
    mm = comfy().model_management
    model = Stack(ops, fmt)
    x = torch.randn(4, 256)
    with torch.no_grad():
        expected = model(x)
    patcher = comfy().model_patcher.ModelPatcher(model, CPU, CPU)
    patcher.load(CPU, lowvram_model_memory=split_budget(model))
    offloaded = [m for m in model.children() if hasattr(m, "prev_comfy_cast_weights")]
    resident = [m for m in model.children() if not hasattr(m, "prev_comfy_cast_weights")]
    quantized_cls = pack("pipeline.checkpoints.quantized").QuantizedLinear
    assert resident and any(isinstance(m, quantized_cls) for m in offloaded)
    cast: list[torch.Tensor] = []
    real = mm.cast_to

    def spy(weight: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        cast.append(weight)
        return real(weight, *args, **kwargs)

    monkeypatch.setattr(mm, "cast_to", spy)
    with torch.no_grad():
        out = model(x)
    stored = {id(t) for m in offloaded for t in m.state_dict(keep_vars=True).values()}
    assert sorted(id(t) for t in cast) == sorted(stored)
    assert sum(t.numel() * t.element_size() for t in cast) == sum(bytes_of(m) for m in offloaded)
    assert torch.equal(out, expected)
    patcher.unpatch_model(CPU)


def write_lora(path: Path, model: nn.Module) -> Path:
    """An official-layout LoRA on every layer; "up" has two split up-projections like a fused layer."""
    lora = pack("pipeline.checkpoints.lora")
    gen = torch.Generator().manual_seed(9)
    tensors = {}
    for name, fan_in, fan_out in LAYERS:
        stem, parts, rank = lora.PREFIX + name, 2 if name == "up" else 1, 4
        tensors[f"{stem}.lora_down.weight"] = 0.1 * torch.randn(parts * rank, fan_in, generator=gen)
        for j in range(parts):
            up = 0.1 * torch.randn(fan_out // parts, rank, generator=gen)
            tensors[f"{stem}.lora_up.{f'blocks.{j}.' if parts > 1 else ''}weight"] = up
        tensors[f"{stem}.alpha_scale"] = torch.tensor(0.5)
    save_file(tensors, str(path))
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_unpatch_restores_lora_weights_exactly(ops: type, fmt: str, tmp_path: Path) -> None:
    """The engine's LoRA moves onto the ModelPatcher (ComfyUI LoRA patches on dense layers, weight wrappers on
    quantised ones): a partially loaded forward equals the engine's LoRA forward, quantised data are never
    written, and unpatch_model restores every weight bit for bit."""
    lora, comfy_ops = pack("pipeline.checkpoints.lora"), pack("nodes.comfy_ops")
    model = Stack(ops, fmt)
    x = torch.randn(4, 256)
    with torch.no_grad():
        base = model(x)
    info = lora.apply_lora(model, write_lora(tmp_path / "lora.safetensors", model), strength=0.8)
    with torch.no_grad():
        engine = model(x)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    patcher = comfy().model_patcher.ModelPatcher(model, CPU, CPU)
    assert comfy_ops.move_lora_to_patcher(patcher) == len(info.modules) == len(LAYERS)
    assert not any(lora.lora_patches(m) for m in model.modules())
    patcher.load(CPU, lowvram_model_memory=split_budget(model))
    assert any(hasattr(m, "prev_comfy_cast_weights") for m in model.children())
    with torch.no_grad():
        patched = model(x)
    assert rel_l2(patched, engine) <= 1e-5 and rel_l2(patched, base) > 1e-3
    state = model.state_dict()
    for name in (n for n in original if not n.startswith(DENSE)):
        assert torch.equal(state[name], original[name]), name  # quantised data (and biases) untouched
    patcher.unpatch_model(CPU)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in original.items())
    bare = patcher.clone()
    bare.patches, bare.weight_wrapper_patches = {}, {}
    bare.load(CPU, lowvram_model_memory=split_budget(model))
    with torch.no_grad():
        assert torch.equal(model(x), base)  # a patcher without the LoRA runs the base model again
    bare.unpatch_model(CPU)


def test_unpatch_restores_resident_dense_lora_weights(ops: type, tmp_path: Path) -> None:
    """Fully loaded: the dense layer's LoRA is merged into its resident weight by ComfyUI, and restored exactly."""
    lora, comfy_ops = pack("pipeline.checkpoints.lora"), pack("nodes.comfy_ops")
    model = Stack(ops, "int8")
    lora.apply_lora(model, write_lora(tmp_path / "lora.safetensors", model))
    x = torch.randn(4, 256)
    with torch.no_grad():
        engine = model(x)
    head = model.head.weight.clone()
    patcher = comfy().model_patcher.ModelPatcher(model, CPU, CPU)
    comfy_ops.move_lora_to_patcher(patcher)
    patcher.load(CPU, full_load=True)
    assert not torch.equal(model.head.weight, head)  # merged in place
    with torch.no_grad():
        assert rel_l2(model(x), engine) <= 1e-5
    patcher.unpatch_model(CPU)
    assert torch.equal(model.head.weight, head)


def test_cast_protocol_and_lowvram_on_fp8_umt5(ops: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scaled-fp8 umT5 built with the ComfyUI namespace: its fp8 Linears carry the cast protocol, and offloaded
    they cast exactly their fp8 weights and scales to the input's device and encode as without ComfyUI."""
    from support.tiny_models import build_tiny_umt5, write_comfy_umt5_file

    text, encode = pack("pipeline.text.umt5_loader"), pack("pipeline.text.encoder").encode_prompts
    scaled = write_comfy_umt5_file(build_tiny_umt5(tmp_path / "umt5"), tmp_path / "fp8.safetensors", fp8_scaled=True)
    reference = encode(text.load_text_encoder(scaled, dtype=torch.float32), ["A person talks."])[0]
    encoder = text.load_text_encoder(scaled, dtype=torch.float32, operations=ops)
    fp8 = [m for m in encoder.model.modules() if isinstance(m, pack("pipeline.checkpoints.fp8").Fp8Linear)]
    assert fp8 and all(hasattr(m, "comfy_cast_weights") for m in fp8)
    holder = nn.Module()  # ModelPatcher sets `.device`, a read-only property of transformers models
    holder.encoder = encoder.model
    patcher = comfy().model_patcher.ModelPatcher(holder, CPU, CPU)
    patcher.load(CPU, lowvram_model_memory=1)  # nothing fits: every cast-capable layer is offloaded
    assert all(hasattr(m, "prev_comfy_cast_weights") for m in fp8)
    mm, cast = comfy().model_management, []
    real = mm.cast_to
    monkeypatch.setattr(mm, "cast_to", lambda t, *a, **k: cast.append(t) or real(t, *a, **k))
    ours = encode(encoder, ["A person talks."])[0]
    assert {id(t) for m in fp8 for t in m.stored().values()} <= {id(t) for t in cast}
    assert rel_l2(ours.embeds, reference.embeds) <= 1e-6
    patcher.unpatch_model(CPU)


@pytest.mark.parametrize("fmt", FORMATS)
def test_chunk_large_quantized_layers_dequantise_in_row_blocks(
    ops: type, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above DEQUANT_BLOCK_BYTES a quantised layer dequantises and multiplies blocks of rows, resident (the engine's
    forward) and offloaded (ComfyUI's cast path): the output equals the whole-weight one and no block is larger."""
    quantized_module = pack("pipeline.checkpoints.quantized")
    model = Stack(ops, fmt)
    x = torch.randn(4, 256)
    with torch.no_grad():
        expected = model(x)  # the test layers are far below the default block size: whole weights
    block_rows = 64
    monkeypatch.setattr(quantized_module, "DEQUANT_BLOCK_BYTES", 1024 * x.element_size() * block_rows)
    rows_seen: list[int] = []
    real = quantized_module.QuantizedLinear.row_block

    def spy(self: nn.Module, stored: dict[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
        rows_seen.append(len(range(self.out_features)[rows]))
        return real(self, stored, rows)

    monkeypatch.setattr(quantized_module.QuantizedLinear, "row_block", spy)
    patcher = comfy().model_patcher.ModelPatcher(model, CPU, CPU)
    for load in ("resident", "offloaded"):
        if load == "offloaded":
            patcher.load(CPU, lowvram_model_memory=1)  # every layer offloaded: the cast path
            assert all(m.comfy_cast_weights for m in model.children())
        rows_seen.clear()
        with torch.no_grad():
            out = model(x)
        assert rel_l2(out, expected) <= 1e-6, load
        # up: 1024 rows of 256 -> blocks of 256 rows; mid: 512 rows of 1024 -> 64; down: 256 rows of 512 -> 128
        assert rows_seen == [256] * 4 + [64] * 8 + [128] * 2, (load, rows_seen)
    patcher.unpatch_model(CPU)
