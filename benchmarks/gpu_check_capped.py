"""GPU check section 4: the bf16 DiT under a 24 GB cap through the pack's memory management.

ComfyUI's ModelPatcher partial loading ("lowvram") when ComfyUI is importable, the engine's block offload otherwise;
the split between resident and offloaded weights and the activation options come from the estimator's plan.
"""

from __future__ import annotations

from typing import Any

import torch
from gpu_check_common import GB, Context, finite, log, rel_l2, timed
from gpu_check_dit import BF16_NOISE, CAP_BYTES, SIZES, TINY_SIZES, configs_for, dit_inputs

from pipeline.memory.estimate import VideoShape, dit_phase_bytes, tightest_options
from pipeline.memory.offload import offload_last_blocks
from pipeline.memory.plan import CUDA_CONTEXT_BYTES, DIT_PHASES, plan_memory
from pipeline.memory.weights import dit_weights

# Offloading only moves weights: with the same activation options the capped forward is the uncapped one, up to
# kernels that may pick another algorithm for host-fed weights.
SAME_OPTIONS_TOLERANCE = 1e-3


def cap_bytes(ctx: Context, configs: Any, shape: VideoShape) -> int:
    """24 GB on a GPU; for the tiny model a cap that leaves about half of its weights outside."""
    if not ctx.tiny:
        return CAP_BYTES
    weights = dit_weights(configs.dit, "bf16").total
    options = tightest_options(configs.dit, shape)
    activations = max(dit_phase_bytes(configs.dit, shape, phase, options) for phase in DIT_PHASES)
    return CUDA_CONTEXT_BYTES + weights // 2 + activations


def load_with_comfy(ctx: Context, model: torch.nn.Module, resident: int) -> Any:
    """A stock ModelPatcher around the DiT, loaded with `resident` bytes on the device (the rest lowvram)."""
    patcher = ctx.comfy.model_patcher.ModelPatcher(model, load_device=ctx.device, offload_device=torch.device("cpu"))
    patcher.load(ctx.device, lowvram_model_memory=resident)
    offloaded = sum(
        ctx.comfy.model_management.module_size(m) for m in model.modules() if getattr(m, "comfy_cast_weights", False)
    )
    return patcher, offloaded


def load_with_engine(ctx: Context, model: torch.nn.Module, blocks: int) -> Any:
    """The engine's offload: the last `blocks` blocks stay on the host, everything else moves to the device."""
    offload = offload_last_blocks(model.blocks, blocks, ctx.device)
    for name, child in model.named_children():
        if name != "blocks":
            child.to(ctx.device)
    for block in list(model.blocks)[: len(model.blocks) - blocks]:
        block.to(ctx.device)
    return offload, offload.offloaded_bytes


def same_options_reference(ctx: Context, model: torch.nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
    """The same forward with the same activation options, the whole model on the device and no cap."""
    model.to(ctx.device)
    with torch.no_grad():
        out = model(**inputs).float().cpu()
    model.to("cpu")
    if ctx.cuda:
        torch.cuda.empty_cache()
    return out


def check_capped(report: dict[str, Any], out: torch.Tensor, reference: torch.Tensor, cap: int) -> None:
    """Raise with every way the capped run went wrong: non-finite, nothing offloaded, over the cap, different."""
    problems = []
    if not report["finite"]:
        problems.append("output not finite")
    if report["offloaded_gb"] <= 0:
        problems.append("nothing was offloaded")
    peak = report["peak_gb"]
    if peak is not None and peak > cap / GB:
        problems.append(f"peak {peak:.2f} GB above the cap")
    if report["rel_l2_to_uncapped"] > BF16_NOISE:
        problems.append("output differs from the uncapped run beyond bf16 noise")
    if rel_l2(out, reference) > SAME_OPTIONS_TOLERANCE:
        problems.append("output differs from the uncapped run with the same options")
    if problems:
        raise AssertionError("; ".join(problems) + f": {report}")


def section_capped(ctx: Context) -> dict[str, Any]:
    """4. One 512x512 (tiny: 64x64) forward within the cap: no OOM, peak <= cap, output equal to the uncapped one."""
    configs = configs_for(ctx)
    model = ctx.shared.pop("bf16_model")
    name, (height, width) = next(iter((TINY_SIZES if ctx.tiny else SIZES).items()))
    shape = VideoShape(height, width, configs.text_tokens)
    cap = cap_bytes(ctx, configs, shape)
    plan = plan_memory(configs, shape, "bf16", cap)
    model.set_activation_options(plan.options)
    inputs = dit_inputs(configs.dit, height, width, ctx.device, configs.text_tokens)
    reference = same_options_reference(ctx, model, inputs)
    if ctx.cuda:
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(cap / torch.cuda.get_device_properties(ctx.device).total_memory)
    try:
        if ctx.comfy:
            handle, offloaded = load_with_comfy(ctx, model, plan.resident)
        else:
            handle, offloaded = load_with_engine(ctx, model, plan.offloaded_blocks)
        log(f"  {'ComfyUI ModelPatcher' if ctx.comfy else 'engine offload'}: {offloaded / GB:.2f} GB offloaded")
        ctx.reset_peak()
        with torch.no_grad():
            out, median, runs = timed(ctx, lambda: model(**inputs))
        peak = ctx.peak_gb()
    finally:
        if ctx.cuda:
            torch.cuda.set_per_process_memory_fraction(1.0)
    uncapped = ctx.shared[f"bf16_{name}_output"]
    report = {
        "path": "comfy_model_patcher" if ctx.comfy else "engine_block_offload", "size": name, "cap_gb": cap / GB,
        "weights_gb": dit_weights(configs.dit, "bf16").total / GB, "plan_resident_gb": plan.resident / GB,
        "offloaded_gb": offloaded / GB, "plan_offloaded_blocks": plan.offloaded_blocks,
        "options": str(plan.options), "seconds": median, "runs": runs, "peak_gb": peak,
        "rel_l2_to_uncapped": rel_l2(out, uncapped), "finite": finite(out),
        "equal_to_same_options_uncapped": torch.equal(out.float().cpu(), reference),
    }  # fmt: skip
    uncapped_seconds = ctx.shared.get(f"bf16_{name}_seconds")
    report["seconds_ratio_to_uncapped"] = median / uncapped_seconds if uncapped_seconds else None
    check_capped(report, out, reference, cap)
    return report
