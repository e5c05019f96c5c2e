"""GPU check sections 3, 4 and 6: the real-size DiT (random weights) in bf16 and int8, under a memory cap, and with
the continuation KV cache on the host. --tiny swaps in a 2-block, 64-wide model with the same code path."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from gpu_check_common import GB, Context, finite, log, timed

from pipeline.checkpoints.int8 import int8_targets, swap_to_int8
from pipeline.dit.config import DiTConfig
from pipeline.dit.model import LongCatAvatarDiT
from pipeline.memory.estimate import ModelConfigs, VideoShape, dit_phase_bytes, shipped_configs
from pipeline.memory.flops import dit_forward_flops
from pipeline.memory.options import ActivationOptions
from pipeline.memory.weights import dit_weights
from pipeline.operations import without_init
from pipeline.sampling.noise import latent_shape

SEGMENT = 93  # video frames of one segment (24 latent frames)
CONTINUATION_CLEAN = 5  # reference + 4 overlap latents held by the KV cache
SIZES = {"512x512": (512, 512), "480p": (480, 832)}
TINY_SIZES = {"64x64": (64, 64), "64x96": (64, 96)}
# The tiny model: the real config's structural flags at toy widths (as longcat_avatar.tiny_models builds it).
TINY = {"hidden_size": 64, "depth": 2, "num_heads": 4, "caption_channels": 32, "adaln_tembed_dim": 32,
        "intermediate_dim": 32, "output_dim": 48, "context_tokens": 4, "audio_channel": 32}  # fmt: skip
CAP_BYTES = 24 * 10**9  # the 24 GB card the check emulates
BF16_NOISE = 2e-2  # relative L2 allowed between two bf16 runs whose kernels may accumulate in another order


def configs_for(ctx: Context) -> ModelConfigs:
    """The shipped v1.5 configs, with the tiny DiT geometry in --tiny mode."""
    configs = shipped_configs()
    if not ctx.tiny:
        return configs
    return dataclasses.replace(configs, dit=DiTConfig.from_dict({**configs.dit.to_dict(), **TINY}))


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int) -> None:
    """In-place random weights where they live: N(0, 1/fan_in) matrices, int8 codes with matching scales."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    for module in model.modules():
        if hasattr(module, "weight_int8"):  # an Int8Linear, also one of the pack's ComfyUI operations
            module.weight_int8.random_(-127, 128, generator=gen)
            module.weight_scale.fill_(1.0 / (127 * math.sqrt(module.in_features)))  # |w| <= 1/sqrt(fan_in)
        for name, tensor in (*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)):
            if not tensor.is_floating_point() or name == "weight_scale":
                continue
            if tensor.dim() >= 2:
                tensor.normal_(0.0, 1.0 / math.sqrt(tensor[0].numel()), generator=gen)
            elif "norm" in type(module).__name__.lower():
                tensor.normal_(1.0, 0.02, generator=gen)
            else:
                tensor.normal_(0.0, 0.01, generator=gen)


def build_dit(ctx: Context, cfg: DiTConfig, int8: bool, operations: Any = None) -> LongCatAvatarDiT:
    """A random bf16 (or official-int8 layout) DiT allocated directly on the device."""
    ops = without_init(operations)
    model = LongCatAvatarDiT(cfg, operations=ops, device="meta", dtype=torch.bfloat16)
    if int8:  # the namespace's Int8Linear: with the pack's ComfyUI operations, one that carries the cast protocol
        swap_to_int8(model, int8_targets(model), device="meta", dtype=torch.bfloat16, layer_cls=ops.Int8Linear)
    model = model.to_empty(device=ctx.device)
    randomize_(model, seed=1)
    return model.eval()


def dit_inputs(cfg: DiTConfig, height: int, width: int, device: torch.device, text_tokens: int) -> dict[str, Any]:
    """One ai2v first-segment call: 93 frames, frame 0 clean, a padded prompt, one speaker's audio windows."""
    gen = torch.Generator().manual_seed(2)
    shape = latent_shape(SEGMENT, height, width)
    timestep = torch.full((1, shape[2]), 700.0)
    timestep[:, 0] = 0
    mask = torch.zeros(1, text_tokens, dtype=torch.int64)
    mask[:, : text_tokens // 4] = 1
    audio = torch.randn(1, SEGMENT, cfg.audio_window, cfg.audio_block, cfg.audio_channel, generator=gen)
    inputs = {
        "hidden_states": torch.randn(shape, generator=gen), "timestep": timestep,
        "encoder_hidden_states": torch.randn(1, 1, text_tokens, cfg.caption_channels, generator=gen),
        "encoder_attention_mask": mask, "audio_embs": audio,
    }  # fmt: skip
    return {k: v.to(device) for k, v in inputs.items()} | {"num_cond_latents": 1}


def measure_forward(ctx: Context, model: LongCatAvatarDiT, configs: ModelConfigs, fmt: str) -> dict[str, Any]:
    """Median seconds, achieved TFLOP/s, peak memory and the estimator's figure at each size."""
    cfg, results = configs.dit, {}
    for name, (height, width) in (TINY_SIZES if ctx.tiny else SIZES).items():
        inputs = dit_inputs(cfg, height, width, ctx.device, configs.text_tokens)
        ctx.reset_peak()
        with torch.no_grad():
            out, median, runs = timed(ctx, lambda inputs=inputs: model(**inputs))
        tokens = inputs["hidden_states"].shape[2] * (height // 16) * (width // 16)
        flops = dit_forward_flops(cfg, tokens, tokens)
        shape = VideoShape(height, width, configs.text_tokens)
        estimate = dit_weights(cfg, fmt).total + dit_phase_bytes(cfg, shape, "first_segment", ActivationOptions())
        results[name] = {"tokens": tokens, "seconds": median, "runs": runs, "pflop": flops / 1e15,
                         "tflops_achieved": flops / median / 1e12, "peak_gb": ctx.peak_gb(),
                         "estimated_peak_gb": estimate / GB, "finite": finite(out)}  # fmt: skip
        ctx.shared[f"{fmt}_{name}_output"] = out.float().cpu()
        ctx.shared[f"{fmt}_{name}_seconds"] = median
        log(f"  {fmt} {name}: {median:.3f} s, {results[name]['tflops_achieved']:.1f} TFLOP/s, peak {ctx.peak_gb()}")
        if not results[name]["finite"]:
            raise AssertionError(f"{fmt} {name}: the output is not finite")
    return results


def section_dit_forward(ctx: Context) -> dict[str, Any]:
    """3. Real-size forwards in bf16 and in the int8 layout; keeps the bf16 model (host) and int8 model for 4 and 6."""
    configs = configs_for(ctx)
    operations = ctx.comfy.ops.disable_weight_init if ctx.comfy else None  # ComfyUI's cast protocol for section 4
    log("  building the bf16 DiT")
    model = build_dit(ctx, configs.dit, int8=False, operations=operations)
    report = {"bf16": measure_forward(ctx, model, configs, "bf16")}
    ctx.shared["bf16_model"] = model.to("cpu")
    del model
    ctx.reset_peak()
    log("  building the int8 DiT")
    int8 = build_dit(ctx, configs.dit, int8=True)
    report["int8"] = measure_forward(ctx, int8, configs, "int8")
    ctx.shared["int8_model"] = int8
    return report


def continuation(model: LongCatAvatarDiT, inputs: dict[str, Any]) -> torch.Tensor:
    """A continuation step as the sampler runs it: [ref | 4 clean] into the KV cache, then the noisy frames."""
    x, clean = inputs["hidden_states"], CONTINUATION_CLEAN
    common = {"num_cond_latents": clean, "num_ref_latents": 1, "ref_img_index": 10}
    text = torch.zeros_like(inputs["encoder_hidden_states"])
    _, cache = model(x[:, :, :clean], torch.zeros(1, clean, device=x.device), text, audio_embs=inputs["audio_embs"],
                     return_kv=True, skip_crs_attn=True, **common)  # fmt: skip
    return model(
        x[:, :, clean - 1 :], inputs["timestep"][:, clean - 1 :], inputs["encoder_hidden_states"],
        inputs["encoder_attention_mask"], audio_embs=inputs["audio_embs"], kv_cache_dict=cache, mask_frame_range=3,
        **common,
    )  # fmt: skip


def section_kv_host(ctx: Context) -> dict[str, Any]:
    """6. Continuation with the KV cache on the device vs in host memory: equal output, seconds, peaks."""
    configs = configs_for(ctx)
    model = ctx.shared.pop("int8_model")
    height, width = list((TINY_SIZES if ctx.tiny else SIZES).values())[-1]
    inputs = dit_inputs(configs.dit, height, width, ctx.device, configs.text_tokens)
    report, outputs = {}, {}
    for where, on_host in (("device", False), ("host", True)):
        model.set_activation_options(ActivationOptions(kv_cache_on_host=on_host))
        ctx.reset_peak()
        with torch.no_grad():
            outputs[where], median, _ = timed(ctx, lambda: continuation(model, inputs), repeats=2)
        report[where] = {"seconds": median, "peak_gb": ctx.peak_gb()}
        log(f"  KV cache on the {where}: {median:.3f} s, peak {ctx.peak_gb()}")
    report["equal"] = torch.equal(outputs["device"], outputs["host"])
    report["host_over_device_seconds"] = report["host"]["seconds"] / report["device"]["seconds"]
    if not report["equal"]:
        raise AssertionError("the continuation differs with the KV cache on the host")
    return report
