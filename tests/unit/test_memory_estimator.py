"""The memory estimator against real-size meta-device models, and its phase figures against the engine's shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKLWan
from transformers import UMT5Config, UMT5EncoderModel, WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from pipeline.checkpoints.int8 import int8_targets, swap_to_int8
from pipeline.dit import attention
from pipeline.dit.config import DiTConfig
from pipeline.dit.model import LongCatAvatarDiT
from pipeline.memory.activations import ffn_bytes, floor_bytes, forward_bytes, kv_cache_bytes, options_for_budget
from pipeline.memory.encoders import umt5_encoder_params, whisper_encoder_params
from pipeline.memory.estimate import (
    CONFIG_DIR,
    PHASES,
    VideoShape,
    memory_required,
    minimum_memory_required,
    segment_calls,
    shipped_configs,
)
from pipeline.memory.flops import dit_forward_flops
from pipeline.memory.formats import GGML_BLOCKS_FALLBACK, ggml_blocks, tensor_bytes
from pipeline.memory.options import ActivationOptions
from pipeline.memory.plan import CUDA_CONTEXT_BYTES, plan_memory
from pipeline.memory.vae import wan_vae_params
from pipeline.memory.weights import dit_tensor_bytes, dit_weights
from pipeline.sampling.denoise import Continuation, denoise_continuation, denoise_first_segment
from pipeline.sampling.guidance import Guidance
from pipeline.sampling.schedules import build_schedule
from pipeline.text.encoder import TextEmbedding
from support.dit_tiny import tiny_inputs, tiny_model

REALCKPT = Path(__file__).resolve().parents[3] / "shared" / "realckpt"
SHIPPED = {
    "avatar-1.5-dit.json": "avatar-1.5/base_model/config.json",
    "whisper-large-v3.json": "whisper-large-v3/config.json",
    "wan2.1-vae.json": "longcat-video/vae/config.json",
}


def module_bytes(module: torch.nn.Module) -> int:
    """ComfyUI's `module_size`: bytes of every state-dict tensor (meta tensors know their size)."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


@pytest.fixture(scope="module")
def real() -> DiTConfig:
    """The Avatar-1.5 base_model config."""
    return DiTConfig.from_dict(json.loads((REALCKPT / SHIPPED["avatar-1.5-dit.json"]).read_text()))


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_estimator_ships_the_real_configs(name: str) -> None:
    """The configs inside the repository are the published ones."""
    assert json.loads((CONFIG_DIR / name).read_text()) == json.loads((REALCKPT / SHIPPED[name]).read_text())


@pytest.mark.parametrize(("fmt", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16), ("fp32", torch.float32)])
def test_estimator_dense_weight_bytes_equal_the_meta_model(real: DiTConfig, fmt: str, dtype: torch.dtype) -> None:
    """Per tensor, per block and in total, the estimate is the real-size model's module size."""
    model = LongCatAvatarDiT(real, device="meta", dtype=dtype)
    state = model.state_dict()
    assert dit_tensor_bytes(real, fmt) == {k: t.numel() * t.element_size() for k, t in state.items()}
    weights = dit_weights(real, fmt)
    assert weights.total == module_bytes(model)
    assert list(weights.blocks) == [module_bytes(block) for block in model.blocks]


def test_estimator_int8_weight_bytes_equal_the_meta_model(real: DiTConfig) -> None:
    """The official int8 layout: every tensor name and size of the meta model with Int8Linear layers."""
    model = LongCatAvatarDiT(real, device="meta", dtype=torch.bfloat16)
    swap_to_int8(model, int8_targets(model), device="meta", dtype=torch.bfloat16)
    state = model.state_dict()
    assert dit_tensor_bytes(real, "int8") == {k: t.numel() * t.element_size() for k, t in state.items()}
    assert dit_weights(real, "int8").total == module_bytes(model) == 15_880_145_024


def test_estimator_quantised_formats_follow_their_block_layouts(real: DiTConfig) -> None:
    """fp8: one byte per Linear weight and a float32 scale; GGUF: whole blocks; the _M mixes lie between."""
    bf16, fp8 = dit_tensor_bytes(real, "bf16"), dit_tensor_bytes(real, "fp8")
    assert fp8["blocks.0.attn.qkv.weight"] * 2 == bf16["blocks.0.attn.qkv.weight"]
    assert (
        fp8["blocks.0.attn.qkv.scale_weight"] == 4
        and fp8["final_layer.linear.weight"] == bf16["final_layer.linear.weight"]
    )
    assert ggml_blocks() == GGML_BLOCKS_FALLBACK  # equal to gguf.GGML_QUANT_SIZES whenever gguf is importable
    q6 = dit_tensor_bytes(real, "q6_k")
    assert q6["blocks.0.ffn.w2.weight"] == 4096 * 11008 // 256 * 210
    assert q6["blocks.0.attn.qkv.bias"] == 12288 * 4  # 1-D tensors stay F32 in GGUF files
    assert tensor_bytes((64, 32), "q8_0") == 64 * 34 and tensor_bytes((3, 256), "q4_k") == 3 * 144
    totals = {f: dit_weights(real, f).total for f in ("q4_k", "q4_k_m", "q5_k", "q5_k_m", "q6_k", "q8_0", "int8")}
    assert totals["q4_k"] < totals["q4_k_m"] < totals["q5_k"] < totals["q5_k_m"] < totals["q6_k"] < totals["q8_0"]
    mixed = dit_weights(real, "q4_k_m").blocks
    assert mixed[0] > mixed[6] and mixed[0] == mixed[47]  # use_more_bits: first/last eighth get Q6_K down-projections
    with pytest.raises(ValueError, match="multiples of 256"):
        tensor_bytes((4, 100), "q4_k")


def test_estimator_encoder_sizes_equal_the_meta_models() -> None:
    """umT5-XXL encoder, Whisper-large-v3 encoder and the Wan 2.1 VAE: parameter counts from their configs."""
    configs = shipped_configs()
    with torch.device("meta"):
        text = UMT5EncoderModel(UMT5Config(**configs.text))
        audio = WhisperEncoder(WhisperConfig(**configs.audio))
        vae = AutoencoderKLWan.from_config(configs.vae)
    assert umt5_encoder_params(configs.text) == sum(p.numel() for p in text.parameters())
    assert whisper_encoder_params(configs.audio) == sum(p.numel() for p in audio.parameters())
    assert wan_vae_params(configs.vae) == sum(p.numel() for p in vae.parameters())


def test_estimator_flops_use_the_config_parameter_counts(real: DiTConfig) -> None:
    """2·(block params·48 + top params)·Nq + 4·Nq·Nk·hidden·depth with the meta model's parameter counts."""
    model = LongCatAvatarDiT(real, device="meta", dtype=torch.bfloat16)
    block = sum(p.numel() for p in model.blocks[0].parameters())
    top = sum(p.numel() for p in model.parameters()) - real.depth * block
    assert (block, top) == (328_307_456, 94_158_912)
    nq, nk = 37_440, 46_800
    assert dit_forward_flops(real, nq, nk) == 2 * (block * 48 + top) * nq + 4 * nq * nk * 4096 * 48


class CallRecorder:
    """Records what the DiT really processes: block-0 tokens per call, KV-cache bytes, speaker-map query rows."""

    def __init__(self, model: LongCatAvatarDiT, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tokens: list[int] = []
        self.cache_bytes: list[int] = []
        self.map_rows: list[int] = []
        model.blocks[0].register_forward_pre_hook(
            lambda _, args: self.tokens.append(args[0].shape[0] * args[0].shape[1])
        )
        model.register_forward_hook(self._cache)
        original = attention.reference_attention_map

        def spy(q, k, masks, chunk=None):
            self.map_rows.append(q.shape[2])
            return original(q, k, masks, chunk)

        monkeypatch.setattr(attention, "reference_attention_map", spy)

    def _cache(self, _module, _inputs, output) -> None:
        if isinstance(output, tuple):
            self.cache_bytes.append(sum(t.numel() * t.element_size() for kv in output[1].values() for t in kv))


@pytest.mark.parametrize(("speakers", "guidance"), [(1, False), (1, True), (2, False)])
def test_estimator_calls_match_the_engine_token_counts(
    speakers: int, guidance: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokens per call (CFG batch included), KV-cache bytes and speaker-map rows are what the sampler really runs."""
    model = tiny_model("v1.5", seed=31)
    cfg = model.config
    shape = VideoShape(64, 96, 7, frames_per_segment=25, overlap_frames=9, guidance=guidance, speakers=speakers)
    calls = segment_calls(cfg, shape)
    ((first, _),) = calls["first_segment"]
    (cache_pass, collects), (step, _) = calls["continuation_segment"]
    inputs = tiny_inputs(cfg, frames=7, audio_batch=speakers, seed=32)
    text = TextEmbedding(inputs["encoder_hidden_states"][:1], inputs["encoder_attention_mask"][:1])
    masks = torch.zeros(3, 64, 96)
    masks[0, :, :40], masks[1, :, 56:], masks[2, :, 40:56] = 1, 1, 1
    scale = 2.0 if guidance else 1.0
    g = Guidance(text, text, inputs["audio_embs"], scale, scale, masks if speakers > 1 else None)
    schedule = build_schedule("v1.5", 1, False, 7.0)
    noise, latent = inputs["hidden_states"][:1], torch.randn(1, 16, 1, 8, 12)
    recorder = CallRecorder(model, monkeypatch)
    denoise_first_segment(model, noise, schedule, g, latent)
    # CFG: the batched negative+positive call is the largest; the audio-free pass runs alone.
    assert max(recorder.tokens) == first.batch * first.query_tokens == (2 if guidance else 1) * 7 * 24
    assert set(recorder.tokens) <= {first.query_tokens, first.batch * first.query_tokens}
    assert set(recorder.map_rows) <= {first.map_queries} and bool(recorder.map_rows) == (speakers > 1)
    recorder.tokens.clear(), recorder.map_rows.clear()
    cont = Continuation(noise[:, :, :3], noise[:, :, :3], latent, 4, 1)
    denoise_continuation(model, noise, schedule, g, cont)
    assert collects and recorder.tokens[0] == cache_pass.query_tokens == 4 * 24
    assert max(recorder.tokens[1:]) == step.batch * step.query_tokens and step.query_tokens == 4 * 24
    assert recorder.cache_bytes == [kv_cache_bytes(cfg, step.cached_tokens, 4)]  # float32 tiny model
    assert set(recorder.map_rows) <= {step.map_queries} and bool(recorder.map_rows) == (speakers > 1)


def test_estimator_phase_figures_follow_the_shapes() -> None:
    """Required ≥ minimum per phase; the KV cache is exactly what moving it to the host saves; tiles bound decode."""
    configs = shipped_configs()
    shape = VideoShape(480, 832, configs.text_tokens)
    for phase in PHASES:
        assert 0 < minimum_memory_required(configs, shape, phase) <= memory_required(configs, shape, phase)
    cfg = configs.dit
    (cache_pass, _), (step, _) = segment_calls(cfg, shape)["continuation_segment"]
    assert (step.query_tokens, step.cached_tokens, cache_pass.query_tokens) == (20 * 1560, 5 * 1560, 5 * 1560)
    resident = forward_bytes(cfg, step, ActivationOptions())
    hosted = forward_bytes(cfg, step, ActivationOptions(kv_cache_on_host=True))
    assert resident - hosted == kv_cache_bytes(cfg, 5 * 1560, 2) == 48 * 2 * 7800 * 4096 * 2
    whole = ffn_bytes(cfg, step, None)
    assert whole - ffn_bytes(cfg, step, 8192) == 3 * (20 * 1560 - 8192) * 11008 * 2
    big = VideoShape(768, 1280, configs.text_tokens)
    assert minimum_memory_required(configs, big, "decode") == minimum_memory_required(configs, shape, "decode")
    assert memory_required(configs, big, "decode") > memory_required(configs, shape, "decode")
    cfg_shape = VideoShape(480, 832, configs.text_tokens, guidance=True)
    assert memory_required(configs, cfg_shape, "first_segment") > memory_required(configs, shape, "first_segment")


def test_estimator_budget_options_fit_and_are_tight() -> None:
    """Chunks chosen for a budget bring every call under it; one byte less than the whole peak forces chunking."""
    configs = shipped_configs()
    cfg, shape = configs.dit, VideoShape(768, 1280, configs.text_tokens, speakers=2)
    calls = [c for phase in segment_calls(cfg, shape).values() for c in phase]
    whole = max(forward_bytes(cfg, call, ActivationOptions(), collects) for call, collects in calls)
    assert options_for_budget(cfg, calls, whole) == ActivationOptions()
    tighter = options_for_budget(cfg, calls, whole - 1)
    assert tighter != ActivationOptions()
    budget = max(floor_bytes(cfg, call) for call, _ in calls)  # the least any chunking can reach
    options = options_for_budget(cfg, calls, budget)
    assert options.ffn_chunk_tokens and options.map_chunk_queries and options.kv_cache_on_host
    assert all(forward_bytes(cfg, call, options, collects) <= budget for call, collects in calls)


@pytest.mark.parametrize("vram_gb", [24, 16, 12])
def test_estimator_plan_fits_and_offloads_no_more_than_needed(vram_gb: int) -> None:
    """int8 at 480p: the plan's DiT phases fit the VRAM; keeping one more block resident would not."""
    configs = shipped_configs()
    shape = VideoShape(480, 832, configs.text_tokens)
    vram = vram_gb * 10**9
    plan = plan_memory(configs, shape, "int8", vram)
    assert plan.fits and plan.phases["first_segment"] <= vram and plan.resident + plan.offloaded == plan.weights.total
    assert plan.phases["first_segment"] >= plan.resident + CUDA_CONTEXT_BYTES
    if plan.offloaded_blocks:
        block = plan.weights.largest_block
        assert plan.phases["first_segment"] + block > vram or plan.phases["continuation_segment"] + block > vram
    assert not plan_memory(configs, shape, "int8", 2 * 10**9).fits
