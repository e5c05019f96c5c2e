"""A memory plan for one run on a given amount of VRAM, its compute estimate, and a readable summary of both."""

from __future__ import annotations

from dataclasses import dataclass, field

from .activations import options_for_budget
from .encoders import umt5_encoder_params, whisper_encoder_params
from .estimate import PHASES, ModelConfigs, VideoShape, decode_bytes, dit_phase_bytes, phase_bytes, segment_calls
from .flops import dit_forward_flops, seconds_at
from .options import ActivationOptions
from .phases import SEGMENT_PHASES
from .vae import wan_vae_params
from .weights import DiTWeights, dit_weights

GB = 1e9
# The CUDA context with cuBLAS/cuDNN workspaces takes about 1 GiB of every card before any tensor is allocated.
CUDA_CONTEXT_BYTES = 1 << 30
# While an offloaded block computes, the next one is already being copied in: two blocks in flight.
BLOCKS_IN_FLIGHT = 2
DIT_PHASES = SEGMENT_PHASES


@dataclass(frozen=True)
class MemoryPlan:
    """Where the DiT's weights live, which activation options run, and the device peak of every phase."""

    weight_format: str
    vram: int | None
    weights: DiTWeights
    lora: int
    offloaded_blocks: int
    offloaded: int
    options: ActivationOptions
    tiled_decode: bool
    phases: dict[str, int] = field(default_factory=dict)  # device bytes: weights there + activations + context

    @property
    def resident(self) -> int:
        """DiT weight bytes kept on the device."""
        return self.weights.total - self.offloaded

    @property
    def peak(self) -> int:
        """The largest phase's device bytes (an encoder above the VRAM is partly offloaded by ComfyUI: the VRAM)."""
        capped = self.vram is not None
        return max(
            size if phase in DIT_PHASES or not capped else min(size, self.vram) for phase, size in self.phases.items()
        )

    @property
    def fits(self) -> bool:
        """True when no DiT phase exceeds the VRAM (encoders may still be partly offloaded by ComfyUI)."""
        return self.vram is None or all(self.phases[p] <= self.vram for p in DIT_PHASES)


def encoder_weight_bytes(configs: ModelConfigs, act_bytes: int) -> dict[str, int]:
    """Weights each encoder phase loads, at the activation dtype (umT5 bf16, Whisper fp16, VAE bf16); phases whose
    config is absent are left out."""
    counts = {
        "text_encode": lambda: umt5_encoder_params(configs.text),
        "audio_encode": lambda: whisper_encoder_params(configs.audio),
        "portrait_encode": lambda: wan_vae_params(configs.vae),
        "decode": lambda: wan_vae_params(configs.vae),
    }
    return {phase: count() * act_bytes for phase, count in counts.items() if configs.covers(phase)}


def _offload(weights: DiTWeights, need: int) -> tuple[int, int]:
    """(blocks, bytes) to keep on the host so that `need` more bytes fit: largest blocks first."""
    sizes = sorted(weights.blocks, reverse=True)
    moved = count = 0
    while count < len(sizes) and moved < need:
        moved += sizes[count]
        count += 1
    return count, moved


def plan_memory(
    configs: ModelConfigs,
    shape: VideoShape,
    weight_format: str,
    vram: int | None = None,
    lora: int = 0,
    weights: DiTWeights | None = None,
) -> MemoryPlan:
    """Fit the run into `vram` bytes (None: no limit): chunk, move the KV cache to the host, offload DiT blocks.

    `weights` are a loaded model's own bytes (`model_weights`); by default they are computed for `weight_format`.
    """
    cfg = configs.dit
    weights = weights or dit_weights(cfg, weight_format)
    options, blocks, offloaded, tiled = ActivationOptions(), 0, 0, False
    if vram is not None:
        calls = [c for phase in segment_calls(cfg, shape).values() for c in phase]
        options = options_for_budget(cfg, calls, vram - CUDA_CONTEXT_BYTES - weights.total - lora)
        activations = max(dit_phase_bytes(cfg, shape, p, options) for p in DIT_PHASES)
        over = weights.total + lora + activations + CUDA_CONTEXT_BYTES - vram
        if over > 0:
            blocks, offloaded = _offload(weights, over + BLOCKS_IN_FLIGHT * weights.largest_block)
        if configs.covers("decode"):
            decode_need = encoder_weight_bytes(configs, shape.act_bytes)["decode"] + CUDA_CONTEXT_BYTES
            tiled = decode_need + decode_bytes(configs, shape, tiled=False) > vram
    plan = MemoryPlan(weight_format, vram, weights, lora, blocks, offloaded, options, tiled)
    plan.phases.update(phase_peaks(configs, shape, plan))
    return plan


def phase_peaks(configs: ModelConfigs, shape: VideoShape, plan: MemoryPlan) -> dict[str, int]:
    """Device bytes of each phase under the plan: its weights on the device, its activations, the CUDA context."""
    encoders = encoder_weight_bytes(configs, shape.act_bytes)
    streamed = BLOCKS_IN_FLIGHT * plan.weights.largest_block if plan.offloaded_blocks else 0
    peaks = {}
    for phase in (p for p in PHASES if configs.covers(p)):
        if phase in DIT_PHASES:
            used = plan.resident + plan.lora + streamed + dit_phase_bytes(configs.dit, shape, phase, plan.options)
        elif phase == "decode":
            used = encoders[phase] + decode_bytes(configs, shape, plan.tiled_decode)
        else:
            used = encoders[phase] + phase_bytes(configs, shape, phase, tight=False)
        peaks[phase] = used + CUDA_CONTEXT_BYTES
    return peaks


@dataclass(frozen=True)
class ComputeEstimate:
    """Dense FLOPs of all DiT forwards of a run and the time at a stated throughput."""

    segments: int
    steps_first: int
    steps_next: int
    flops: float
    tflops: float

    @property
    def seconds(self) -> float:
        """Seconds at the stated throughput."""
        return seconds_at(self.flops, self.tflops)


def estimate_compute(
    configs: ModelConfigs, shape: VideoShape, segments: int, steps_first: int, steps_next: int, tflops: float
) -> ComputeEstimate:
    """FLOPs of the first segment, of each continuation (its denoising steps and one KV-cache pass), in total."""
    cfg, calls = configs.dit, segment_calls(configs.dit, shape)
    ((first, _),) = calls["first_segment"]
    (cache, _), (step, _) = calls["continuation_segment"]
    per_sample = shape.samples_per_step
    total = steps_first * per_sample * dit_forward_flops(cfg, first.query_tokens, first.query_tokens)
    continuation = (
        steps_next * per_sample * dit_forward_flops(cfg, step.query_tokens, step.query_tokens + step.cached_tokens)
    )
    continuation += dit_forward_flops(cfg, cache.query_tokens, cache.query_tokens)
    return ComputeEstimate(segments, steps_first, steps_next, total + (segments - 1) * continuation, tflops)


def _options_text(options: ActivationOptions) -> str:
    """The activation options in words."""
    ffn = f"FFN in {options.ffn_chunk_tokens:,}-token chunks" if options.ffn_chunk_tokens else "FFN unchunked"
    speaker = f", speaker map in {options.map_chunk_queries:,}-query chunks" if options.map_chunk_queries else ""
    kv = "host" if options.kv_cache_on_host else "GPU"
    return f"{ffn}{speaker}, continuation KV cache on the {kv}"


def _over(plan: MemoryPlan, phase: str, size: int) -> str:
    """A note for a phase that needs more than the VRAM."""
    if plan.vram is None or size <= plan.vram:
        return ""
    if phase in DIT_PHASES:
        return " (does not fit)"
    return " (more than the VRAM: ComfyUI keeps part of this model's weights in host memory)"


def plan_summary(plan: MemoryPlan, compute: ComputeEstimate | None = None) -> str:
    """The plan (and compute estimate) as lines of text: resident, offloaded, peak in GB, phases, time."""
    depth = len(plan.weights.blocks)
    budget = "no VRAM limit" if plan.vram is None else f"{plan.vram / GB:.1f} GB of VRAM"
    verdict = "" if plan.vram is None else (" - fits" if plan.fits else " - does NOT fit even fully offloaded")
    lines = [
        f"DiT {plan.weight_format}: {plan.weights.total / GB:.2f} GB of weights ({budget}{verdict})",
        f"  resident {plan.resident / GB:.2f} GB, offloaded {plan.offloaded / GB:.2f} GB "
        f"({plan.offloaded_blocks} of {depth} blocks), LoRA {plan.lora / GB:.2f} GB",
        f"  {_options_text(plan.options)}; decode {'tiled' if plan.tiled_decode else 'untiled'}, streamed",
        f"  peak {plan.peak / GB:.2f} GB; per phase (weights + activations + CUDA context):",
        *(f"    {phase:<21} {size / GB:6.2f} GB{_over(plan, phase, size)}" for phase, size in plan.phases.items()),
    ]
    if compute is not None:
        lines.append(
            f"compute: {compute.segments} segment(s) x {compute.steps_first}/{compute.steps_next} steps = "
            f"{compute.flops / 1e15:.1f} PFLOP -> {compute.seconds:.0f} s of DiT time at {compute.tflops:g} TFLOP/s"
        )
    return "\n".join(lines)
