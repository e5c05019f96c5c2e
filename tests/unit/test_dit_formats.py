"""Checkpoint layouts: single files (with and without prefixes), folders, shard indexes, int8; errors; versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pipeline.checkpoints.dit_loader import load_dit
from pipeline.checkpoints.errors import CheckpointError
from pipeline.checkpoints.int8 import Int8Linear, quantize_model
from pipeline.checkpoints.save import save_int8_folder, save_sharded, write_config
from pipeline.dit.model import LongCatAvatarDiT
from support.dit_tiny import tiny_inputs, tiny_model


def run(model: LongCatAvatarDiT, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """One ai2v-style forward."""
    with torch.no_grad():
        return model(**inputs, num_cond_latents=1)


@pytest.fixture(scope="module")
def source() -> tuple[LongCatAvatarDiT, dict[str, torch.Tensor], torch.Tensor]:
    """A random tiny v1.5 model, inputs, and its output."""
    model = tiny_model("v1.5", seed=11)
    inputs = tiny_inputs(model.config, frames=3)
    return model, inputs, run(model, inputs)


@pytest.mark.parametrize("prefix", ["", "model.", "diffusion_model.", "model.diffusion_model."])
def test_single_file_without_config(tmp_path: Path, source: tuple, prefix: str) -> None:
    """A lone file (any key prefix, neutral name) loads with the geometry inferred from the shapes."""
    model, inputs, expected = source
    path = tmp_path / "anything.safetensors"
    save_file({prefix + k: v for k, v in model.state_dict().items()}, str(path))
    loaded = load_dit(path, dtype=torch.float32)
    assert (loaded.format, loaded.version, loaded.key_prefix) == ("single-file", "v1.5", prefix)
    assert loaded.config.to_dict() == model.config.to_dict()
    assert torch.equal(run(loaded.model, inputs), expected)


def test_sharded_folder_any_file_names(tmp_path: Path, source: tuple) -> None:
    """A shard index with arbitrary names is found by content; config.json is used; one copy of each tensor."""
    model, inputs, expected = source
    shards = save_sharded(
        model.state_dict(), tmp_path, max_bytes=200_000, shard_name="part{index}.st", index_name="map.json"
    )
    write_config(model.config, tmp_path)
    assert len(shards) >= 3
    loaded = load_dit(tmp_path, dtype=torch.float32)
    assert (loaded.format, loaded.version) == ("sharded", "v1.5")
    assert set(loaded.files) == set(shards)
    assert torch.equal(run(loaded.model, inputs), expected)
    assert not any(t.is_meta for t in loaded.model.state_dict().values())
    assert torch.equal(run(load_dit(tmp_path / "map.json", dtype=torch.float32).model, inputs), expected)


def test_diffusers_folder_in_bf16(tmp_path: Path, source: tuple) -> None:
    """One weights file + config.json; loading casts to the requested dtype."""
    model, inputs, expected = source
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    write_config(model.config, tmp_path)
    loaded = load_dit(tmp_path)
    assert loaded.format == "diffusers-folder"
    assert all(p.dtype == torch.bfloat16 for p in loaded.model.parameters())
    out = run(loaded.model, inputs)
    assert ((out - expected).norm() / expected.norm()).item() < 3e-2


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_int8_folder_stays_int8(tmp_path: Path, source: tuple, dtype: torch.dtype) -> None:
    """The official int8 layout loads as Int8Linear layers whose weights remain int8 in memory."""
    model, inputs, _ = source
    quantized = tiny_model("v1.5", seed=11)
    names = quantize_model(quantized, bf16_dense=True)
    save_int8_folder(quantized.state_dict(), quantized.config, tmp_path, max_bytes=150_000)
    loaded = load_dit(tmp_path, dtype=dtype)
    assert loaded.format == "int8"
    layers = {n: m for n, m in loaded.model.named_modules() if isinstance(m, Int8Linear)}
    assert sorted(layers) == sorted(names) and "final_layer.linear" not in layers
    assert all(m.weight_int8.dtype == torch.int8 and m.weight_scale.dtype == torch.float32 for m in layers.values())
    if dtype == torch.float32:
        assert torch.allclose(run(loaded.model, inputs), run(quantized, inputs), atol=1e-5)


@pytest.mark.parametrize(
    ("version", "audio_channel", "hint", "expected"),
    [("v1.0", 32, None, "v1.0"), ("v1.5", 32, None, "v1.5"), ("v1.0", 40, None, "v1.5"), ("v1.0", 40, "v1.0", "v1.0")],
)
def test_version_from_weights(
    tmp_path: Path, version: str, audio_channel: int, hint: str | None, expected: str
) -> None:
    """Without config the version comes from proj1's input width; 12*40 = 5*96 is ambiguous and needs the hint."""
    model = tiny_model(version, audio_channel=audio_channel)
    save_file(model.state_dict(), str(tmp_path / "x.safetensors"))
    loaded = load_dit(tmp_path / "x.safetensors", dtype=torch.float32, version=hint)
    assert loaded.version == expected
    assert loaded.multi_speaker is (expected == "v1.5")
    assert load_dit(tmp_path / "x.safetensors", multi_speaker=True, version=hint).multi_speaker


def test_missing_and_unexpected_keys_are_named(tmp_path: Path, source: tuple) -> None:
    """A wrong file names itself, the first missing / unexpected keys and the counts, in a few lines."""
    model, _, _ = source
    state = dict(model.state_dict())
    del state["blocks.1.ffn.w2.weight"]
    state["blocks.1.extra.weight"] = torch.zeros(3)
    path = tmp_path / "broken.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError) as err:
        load_dit(path)
    message = str(err.value)
    assert str(path) in message and "blocks.1.ffn.w2.weight" in message and "blocks.1.extra.weight" in message
    assert "missing 1" in message and "unexpected 1" in message and len(message.splitlines()) <= 4


def test_wrong_shape_is_named(tmp_path: Path, source: tuple) -> None:
    """A tensor of the wrong shape is reported with both shapes."""
    model, _, _ = source
    state = dict(model.state_dict())
    state["blocks.0.attn.proj.bias"] = torch.zeros(63)
    save_file(state, str(tmp_path / "w.safetensors"))
    write_config(model.config, tmp_path)
    with pytest.raises(CheckpointError, match=r"blocks\.0\.attn\.proj\.bias \[63\] \(want \[64\]\)"):
        load_dit(tmp_path)


def test_many_missing_keys_are_summarised(tmp_path: Path, source: tuple) -> None:
    """Dozens of missing keys: first five and a count, not a wall of text."""
    model, _, _ = source
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("blocks.1.")}
    save_file(state, str(tmp_path / "w.safetensors"))
    write_config(model.config, tmp_path)
    message = str(pytest.raises(CheckpointError, load_dit, tmp_path).value)
    assert "missing 33 tensor(s)" in message and "(+28 more)" in message


@pytest.mark.parametrize("kind", ["text", "empty", "absent", "other-model", "two-files"])
def test_unusable_paths(tmp_path: Path, kind: str) -> None:
    """Non-safetensors files, empty folders, absent paths, other models and ambiguous folders are clear errors."""
    target = tmp_path / "target"
    if kind == "text":
        target.write_text("not weights")
    elif kind == "empty":
        target.mkdir()
    elif kind == "other-model":
        save_file({"encoder.layer.0.weight": torch.zeros(2, 2)}, str(target))
    elif kind == "two-files":
        target.mkdir()
        for name in ("a.safetensors", "b.safetensors"):
            save_file({"x": torch.zeros(1)}, str(target / name))
    with pytest.raises(CheckpointError, match=str(target).replace("/", ".")):
        load_dit(target)


def test_config_json_next_to_a_single_file(tmp_path: Path, source: tuple) -> None:
    """Beside a single file, a config.json of another model is ignored and a fitting one is used."""
    model, inputs, expected = source
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 4096, "depth": 48, "num_heads": 32}))
    assert torch.equal(run(load_dit(tmp_path / "w.safetensors", dtype=torch.float32).model, inputs), expected)
    write_config(model.config.__class__.from_dict({**model.config.to_dict(), "text_tokens_zero_pad": False}), tmp_path)
    assert not load_dit(tmp_path / "w.safetensors", dtype=torch.float32).config.text_tokens_zero_pad


def test_folder_config_is_authoritative(tmp_path: Path, source: tuple) -> None:
    """In a folder the config.json decides the geometry, so weights of another size are a named mismatch."""
    model, _, _ = source
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({**model.config.to_dict(), "hidden_size": 128}))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_dit(tmp_path)
