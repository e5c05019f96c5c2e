"""dtype policy: bf16 / fp16 / fp32 all run; in bf16 the reference's fp32 islands are honoured without autocast."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

from support.dit_tiny import rel_l2, tiny_inputs, tiny_model

FP32_ISLAND_SUFFIXES = ("adaLN_modulation.1", "final_layer.linear", "t_embedder.mlp.0", "t_embedder.mlp.2")


def record_dtypes(model: torch.nn.Module, names: list[str]) -> dict[str, list[tuple[torch.dtype, torch.dtype]]]:
    """Attach hooks that log (input dtype, output dtype) of every call of the named modules."""
    seen: dict[str, list[tuple[torch.dtype, torch.dtype]]] = defaultdict(list)
    for name in names:

        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor, name: str = name) -> None:
            seen[name].append((args[0].dtype, output.dtype))

        model.get_submodule(name).register_forward_hook(hook)
    return seen


def test_bf16_fp32_islands() -> None:
    """Timesteps are bf16-rounded before the sinusoid; t-MLP, every adaLN and the final layer compute in fp32."""
    model = tiny_model(dtype=torch.bfloat16)
    inputs = tiny_inputs(model.config, frames=3)
    inputs["timestep"] = torch.tensor([[0.0, 937.3, 979.98]])  # bf16 spacing is 4 in [512, 1024): 936 and 980
    sinusoid_inputs: list[torch.Tensor] = []
    model.t_embedder.sinusoid.register_forward_pre_hook(lambda m, args: sinusoid_inputs.append(args[0].clone()))
    islands = [n for n, _ in model.named_modules() if n.endswith(FP32_ISLAND_SUFFIXES)]
    bf16_layers = ["blocks.0.attn.qkv", "blocks.1.ffn.w2", "blocks.0.audio_cross_attn.kv_linear", "audio_proj.proj1"]
    seen = record_dtypes(model, islands + bf16_layers)
    with torch.no_grad():
        out = model(**inputs, num_cond_latents=1)
    assert out.dtype == torch.float32
    (timesteps,) = sinusoid_inputs
    assert timesteps.tolist() == [0.0, 936.0, 980.0]
    assert len(islands) == 2 * 2 + 1 + 2 + 1  # 2 blocks x 2 adaLN heads, final adaLN, t-MLP x 2, final linear
    for name in islands:
        assert seen[name] and all(dt == (torch.float32, torch.float32) for dt in seen[name]), (name, seen[name])
    for name in bf16_layers:
        assert seen[name] and all(dt == (torch.bfloat16, torch.bfloat16) for dt in seen[name]), (name, seen[name])
    # The islands upcast temporarily: stored weights stay bf16.
    assert model.blocks[0].adaLN_modulation[1].weight.dtype == torch.bfloat16


@pytest.mark.parametrize(("dtype", "bound"), [(torch.bfloat16, 3e-2), (torch.float16, 5e-3)])
def test_low_precision_close_to_fp32(dtype: torch.dtype, bound: float) -> None:
    """bf16 and fp16 runs of the same weights stay within rounding distance of the fp32 run."""
    ref_model = tiny_model(seed=3)
    low_model = tiny_model(seed=3, dtype=dtype)
    inputs = tiny_inputs(ref_model.config, frames=3, batch=2, seed=4)
    # Timesteps exactly representable in bf16/fp16, so only weight/activation rounding differs (not the sinusoid).
    inputs["timestep"] = torch.tensor([[0.0, 936.0, 500.0], [0.0, 248.0, 64.0]])
    with torch.no_grad():
        ref = ref_model(**inputs, num_cond_latents=1)
        low = low_model(**inputs, num_cond_latents=1)
    assert low.dtype == torch.float32 and torch.isfinite(low).all()
    error = rel_l2(low, ref)
    assert 0 < error < bound, error


def test_fp32_has_no_rounding() -> None:
    """In fp32 the timesteps reach the sinusoid unrounded."""
    model = tiny_model()
    inputs = tiny_inputs(model.config, frames=2)
    inputs["timestep"] = torch.tensor([[937.3, 979.98]])
    captured: list[torch.Tensor] = []
    model.t_embedder.sinusoid.register_forward_pre_hook(lambda m, args: captured.append(args[0].clone()))
    with torch.no_grad():
        model(**inputs)
    assert torch.equal(captured[0], torch.tensor([937.3, 979.98]))
