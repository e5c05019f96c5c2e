"""The version table and the one distilled-mode decision: what runs for every version, LoRA and `distilled` value,
how the DMD distillation LoRA is recognised (official path or tensor set), and that the command line reads the
same decision without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.checkpoints.lora import apply_lora, distillation_tensor_set, is_distillation_lora, lora_key
from pipeline.dit.config import DiTConfig
from pipeline.dit.model import LongCatAvatarDiT
from pipeline.sampling.mode import LORA_DISTILLATION, LORA_NONE, LORA_OTHER, distilled_problem, sampling_mode
from pipeline.versions import VERSIONS, get_version, normalize_version
from support.dit_tiny import tiny_model, write_random_lora

REPO = Path(__file__).resolve().parents[2]
REALCKPT = REPO.parent / "shared" / "realckpt"
BF16_BYTES = 2


def test_version_table_holds_what_differs() -> None:
    v10, v15 = VERSIONS["v1.0"], VERSIONS["v1.5"]
    assert (v10.encoder_name, v10.feature_rate, v10.video_fps, v10.audio_blocks) == (
        "chinese-wav2vec2-base",
        32,
        16,
        12,
    )
    assert (v15.encoder_name, v15.feature_rate, v15.video_fps, v15.audio_blocks) == ("whisper-large-v3", 25, 25, 5)
    real_shift = json.loads((REALCKPT / "avatar-1.5" / "scheduler" / "scheduler_config.json").read_text())["shift"]
    assert v15.default_shift == real_shift == 7.0 and v10.default_shift == 12.0
    assert (v15.distill_steps, v10.distill_steps) == (8, None)
    assert (v10.latent_stitching, v15.latent_stitching) == (True, False)
    assert (v10.scheduler_repo, v15.scheduler_repo) == ("LongCat-Video", "LongCat-Video-Avatar-1.5")
    assert v15.distill_lora_path == "LongCat-Video-Avatar-1.5/lora/dmd_lora.safetensors"
    real = DiTConfig.from_dict(json.loads((REALCKPT / "avatar-1.5" / "base_model" / "config.json").read_text()))
    assert (real.audio_block, real.audio_channel) == (v15.audio_blocks, v15.audio_channels) and real.version == "v1.5"
    assert normalize_version("1.5") == normalize_version("avatar-v1.5") == "v1.5" and normalize_version("2") is None
    with pytest.raises(ValueError, match="v1.0, v1.5"):
        get_version("v2")


@pytest.mark.parametrize(
    ("version", "distilled", "lora", "expected"),
    [
        ("v1.5", "auto", LORA_DISTILLATION, (True, 8, 1.0, 1.0)),
        ("v1.5", "on", LORA_NONE, (True, 8, 1.0, 1.0)),
        ("v1.5", True, LORA_OTHER, (True, 8, 1.0, 1.0)),
        ("v1.5", "auto", LORA_OTHER, (False, 30, 4.0, 3.0)),  # a style LoRA keeps the user's settings
        ("v1.5", "auto", LORA_NONE, (False, 30, 4.0, 3.0)),
        ("v1.5", "off", LORA_DISTILLATION, (False, 30, 4.0, 3.0)),
        ("v1.0", "auto", LORA_DISTILLATION, (False, 30, 4.0, 3.0)),
        ("v1.0", "off", LORA_NONE, (False, 30, 4.0, 3.0)),
    ],
)
def test_mode_for_every_version_lora_and_choice(version: str, distilled, lora: str, expected: tuple) -> None:
    mode = sampling_mode(version, distilled, lora, 30, 4.0, 3.0)
    assert (mode.distilled, mode.steps, mode.text_guidance, mode.audio_guidance) == expected


def test_mode_notes_say_why() -> None:
    forced = sampling_mode("v1.5", "auto", LORA_DISTILLATION, 30, 4.0, 3.0).note
    assert "distilled mode (the model carries the DMD distillation LoRA)" in forced
    assert "steps=30, text_guidance=4, audio_guidance=3 are not used" in forced
    style = sampling_mode("v1.5", "auto", LORA_OTHER, 30, 4.0, 3.0).note
    assert style.startswith("full sampling: 30 steps with guidance (text 4, audio 3)")
    assert "the LoRA is not the DMD distillation LoRA" in style
    assert "blurred" in sampling_mode("v1.5", "on", LORA_NONE, 8, 1.0, 1.0).note
    assert "are not used" not in sampling_mode("v1.5", "on", LORA_DISTILLATION, 8, 1.0, 1.0).note


def test_v10_on_and_unknown_choices_are_refused_readably() -> None:
    with pytest.raises(ValueError, match="distilled=on needs a distillation LoRA, and LongCat-Video-Avatar v1.0 has"):
        sampling_mode("v1.0", "on", LORA_NONE, 30, 4.0, 3.0)
    assert distilled_problem("v1.5", "maybe") == "distilled must be one of auto, on, off, got 'maybe'"
    assert distilled_problem("1.5", "on") is None and distilled_problem("1.0", True) is not None


def test_real_size_dmd_tensor_set_has_the_reported_size() -> None:
    """From the real config: 48 blocks x 24 tensors, 630,718,464 parameters = the 1.26 GB bf16 file reported."""
    config = DiTConfig.from_dict(json.loads((REALCKPT / "avatar-1.5" / "base_model" / "config.json").read_text()))
    shapes = distillation_tensor_set(LongCatAvatarDiT(config, device="meta"))
    assert len(shapes) == 48 * 24
    qkv = lora_key("blocks.47.attn.qkv")
    assert shapes[qkv + ".lora_down.weight"] == (384, 4096) and shapes[qkv + ".lora_up.blocks.2.weight"] == (4096, 128)
    assert shapes[lora_key("blocks.0.cross_attn.kv_linear") + ".lora_up.blocks.1.weight"] == (4096, 128)
    assert shapes[lora_key("blocks.3.ffn.w2") + ".lora_down.weight"] == (128, 11008)
    params = sum(torch.Size(shape).numel() for shape in shapes.values() if shape)
    assert params == 630_718_464 and round(params * BF16_BYTES / 1e9, 2) == 1.26


def test_dmd_lora_is_recognised_by_path_or_tensor_set_and_a_style_lora_is_not(tmp_path: Path) -> None:
    model = tiny_model("v1.5", seed=3)
    shapes = distillation_tensor_set(model)
    renamed = write_random_lora(tmp_path / "loras" / "my_fast_lora.safetensors", shapes)
    style_shapes = {k: v for k, v in shapes.items() if "___lorahyphen___attn___lorahyphen___" in k}  # attention only
    style = write_random_lora(tmp_path / "loras" / "style.safetensors", style_shapes)
    official = write_random_lora(tmp_path / "longcat" / get_version("v1.5").distill_lora_path, style_shapes)
    assert is_distillation_lora(model, renamed) and is_distillation_lora(model, official)
    assert not is_distillation_lora(model, style)
    one_more = dict(shapes, **{lora_key("blocks.0.attn.proj") + ".lora_down.weight": (64, 64)})  # another rank
    assert not is_distillation_lora(model, write_random_lora(tmp_path / "rank64.safetensors", one_more))
    assert apply_lora(model, renamed).role == LORA_DISTILLATION
    assert apply_lora(tiny_model("v1.5", seed=3), style).role == LORA_OTHER


def test_command_line_reads_the_engine_tables_without_torch() -> None:
    """longcat_avatar stays importable without torch and uses the engine's decision and version table."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import longcat_avatar.cli, longcat_avatar.workflow as wf, longcat_avatar.params as p\n"
        "from pipeline.sampling import mode\n"
        "assert p.DISTILLED == mode.DISTILLED_CHOICES, p.DISTILLED\n"
        "print(p.validate(p.GenerationParams(version='1.0', distilled='on')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "LongCat-Video-Avatar v1.0 has none" in out.stdout
