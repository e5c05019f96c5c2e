"""Real-size checks without weights: the model built on the meta device against the published index files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pipeline.checkpoints.int8 import int8_targets, swap_to_int8
from pipeline.dit.config import DiTConfig
from pipeline.dit.model import LongCatAvatarDiT

REALCKPT = Path(__file__).resolve().parents[2].parent / "shared" / "realckpt" / "avatar-1.5"
BASE = REALCKPT / "base_model"
INT8 = REALCKPT / "base_model_int8"


def index_of(folder: Path) -> dict:
    """The one `*.safetensors.index.json` of a real checkpoint folder."""
    (path,) = folder.glob("*.safetensors.index.json")
    return json.loads(path.read_text())


def state_bytes(model: torch.nn.Module) -> int:
    """Bytes of every state-dict tensor at its dtype (meta tensors know their size)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


@pytest.fixture(scope="module")
def real_config() -> DiTConfig:
    """The Avatar-1.5 base_model config.json."""
    if not BASE.is_dir():
        pytest.fail(f"real checkpoint metadata missing: {BASE}")
    return DiTConfig.from_dict(json.loads((BASE / "config.json").read_text()))


def test_real_config_reads_as_v15(real_config: DiTConfig) -> None:
    """Backend flags and bookkeeping keys are ignored; geometry and version come out right."""
    assert real_config.version == "v1.5"
    assert (real_config.hidden_size, real_config.depth, real_config.num_heads) == (4096, 48, 32)
    assert real_config.ffn_dim == 11008  # SwiGLU rule: int(2 * 16384 / 3) = 10922 -> next multiple of 256
    assert real_config.head_dim == 128 and real_config.audio_window_vf == 8
    assert real_config.extra == {}  # every key is either used or deliberately ignored


def test_bf16_model_matches_real_index(real_config: DiTConfig) -> None:
    """Exactly the 1608 tensor names of the real index and its 31,705,833,600 bf16 bytes."""
    model = LongCatAvatarDiT(real_config, device="meta", dtype=torch.bfloat16)
    index = index_of(BASE)
    assert set(model.state_dict()) == set(index["weight_map"])
    assert len(model.state_dict()) == 1608
    assert state_bytes(model) == index["metadata"]["total_size"] == 31_705_833_600
    assert sum(p.numel() for p in model.parameters()) == 15_852_916_800


def test_int8_model_matches_real_index(real_config: DiTConfig) -> None:
    """All Linears but final_layer.linear in int8: the 2241 names and 15,880,145,024 bytes of base_model_int8."""
    assert DiTConfig.from_dict(json.loads((INT8 / "config.json").read_text())) == real_config
    model = LongCatAvatarDiT(real_config, device="meta", dtype=torch.bfloat16)
    swap_to_int8(model, int8_targets(model), device="meta", dtype=torch.bfloat16)
    index = index_of(INT8)
    state = model.state_dict()
    assert set(state) == set(index["weight_map"]) and len(state) == 2241
    assert state_bytes(model) == index["metadata"]["total_size"] == 15_880_145_024
    assert state["blocks.0.attn.qkv.weight_int8"].dtype == torch.int8
    assert state["blocks.0.attn.qkv.weight_scale"].dtype == torch.float32
    assert state["final_layer.linear.weight"].dtype == torch.bfloat16


def test_v10_geometry(real_config: DiTConfig) -> None:
    """12 x 768 wav2vec2 features: proj1 [512, 46080], proj1_vf [512, 73728], 15,871,660,096 parameters."""
    config = DiTConfig.from_dict({**real_config.to_dict(), "audio_block": 12, "audio_channel": 768})
    assert config.version == "v1.0"
    model = LongCatAvatarDiT(config, device="meta", dtype=torch.bfloat16)
    assert tuple(model.audio_proj.proj1.weight.shape) == (512, 46080)
    assert tuple(model.audio_proj.proj1_vf.weight.shape) == (512, 73728)
    assert sum(p.numel() for p in model.parameters()) == 15_871_660_096
