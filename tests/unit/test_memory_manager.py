"""The four models as the loader nodes build them, under ComfyUI's own memory manager in process on the CPU: every
weight-bearing module carries ComfyUI's cast protocol, a partial ("lowvram") load casts exactly the offloaded
modules' bytes during one forward, and a LoRA'd DiT's weights come back exactly on unpatch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from support.comfy_inprocess import comfy, pack
from support.dit_tiny import rel_l2, tiny_inputs
from support.refvec import refvec_roots
from support.tiny_models import build_tiny_umt5, build_tiny_vae, write_comfy_umt5_file

CPU = torch.device("cpu")
REFVEC_ROOT = refvec_roots()[0]
DIT_V15 = REFVEC_ROOT / "dit_v1.5"
DMD_LORA_V15 = REFVEC_ROOT / "lora_v1.5" / "dmd_lora.safetensors"
# Modules that hold tensors yet cannot carry the cast protocol, by model, with the reason. ModelPatcher always moves
# such modules to the device whole, and the audio encoders are loaded whole anyway (nodes.managed).
NO_PROTOCOL = {
    "wav2vec2": {
        "": "Wav2Vec2Model's own masked_spec_embed (SpecAugment, unused in inference) sits on a module with children, "
        "which ModelPatcher never offloads",
        "encoder.pos_conv_embed.conv": "weight-normed: its weight is recomputed from the parametrization at each access",
        "encoder.pos_conv_embed.conv.parametrizations.weight": "the weight-norm parametrization's g and v",
    },
}
# Modules a forward never calls, so an offloaded one casts nothing.
NOT_CALLED = {"umt5": {"shared": "UMT5EncoderModel embeds with encoder.embed_tokens; `shared` is its tied twin"}}


def managed() -> Any:
    """nodes.managed, imported as ComfyUI imports the pack."""
    return pack("nodes.managed")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[nn.Module, Callable[[], Any]]]:
    """name -> (model as its loader node builds it, one forward of it) for the DiT, VAE, umT5 (folder and fp8 file),
    Whisper and wav2vec2."""
    tmp = tmp_path_factory.mktemp("models")
    nodes = managed()
    fp32 = torch.float32
    dit, _ = nodes.load_managed_dit(DIT_V15, fp32, version="v1.5")
    inputs = tiny_inputs(dit.config, frames=2)
    build_tiny_vae(tmp / "vae")
    vae, _ = nodes.load_managed_vae(tmp / "vae", fp32)
    pixels = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    tiny = build_tiny_umt5(tmp / "umt5")
    fp8_file = write_comfy_umt5_file(tiny, tmp / "umt5_fp8.safetensors", fp8_scaled=True)
    encode = pack("pipeline.text.encoder").encode_prompts
    out: dict[str, tuple[nn.Module, Callable[[], Any]]] = {
        "dit": (dit.model, lambda: dit.model(**inputs)),
        "vae": (vae.model, lambda: vae.decode(vae.encode(pixels))),  # both halves of the VAE
    }
    for name, source, tokenizer in (("umt5", tmp / "umt5", None), ("umt5_fp8", fp8_file, tiny.tokenizer_dir)):
        text = nodes.load_text_managed(source, dtype=fp32, tokenizer_dir=tokenizer)
        out[name] = (text.model, lambda text=text: encode(text, ["A person talks."])[0].embeds)
    speech = np.sin(np.linspace(0, 400, 16000)).astype(np.float32)
    features = pack("pipeline.audio.features")
    for name, folder in (("whisper", "whisper_tiny"), ("wav2vec2", "wav2vec2_tiny")):
        encoder, _ = nodes.load_managed_audio_encoder(REFVEC_ROOT / "audio" / folder, fp32)
        out[name] = (encoder.model, lambda e=encoder: features.embed_speech(speech, e))
    return out


def tensor_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(name, module) of every module holding parameters or buffers of its own."""
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
            yield name, module


@pytest.mark.parametrize("name", ["dit", "vae", "umt5", "umt5_fp8", "whisper", "wav2vec2"])
def test_cast_protocol_on_every_weight_bearing_module(built: dict, name: str) -> None:
    """No module of a loader-built model holds tensors without `comfy_cast_weights`, except the allow-listed ones."""
    model, _ = built[name]
    allowed = NO_PROTOCOL.get(name, {})
    bare = [n for n, m in tensor_modules(model) if not hasattr(m, "comfy_cast_weights") and n not in allowed]
    assert not bare, f"{name}: modules without ComfyUI's cast protocol: {bare[:8]}"
    assert all(hasattr(model.get_submodule(n), "comfy_cast_weights") is False for n in allowed)


def test_cast_protocol_keeps_an_fp8_umt5_in_fp8(built: dict) -> None:
    """The scaled-fp8 umT5 file stays fp8 in memory: its Linears hold float8 weights."""
    model, _ = built["umt5_fp8"]
    fp8 = [t for t in model.state_dict().values() if t.dtype == torch.float8_e4m3fn]
    assert fp8 and len(fp8) >= 2 * 4  # every attention and FFN Linear of the two layers


def lowvram_budget(model: nn.Module) -> int:
    """A lowvram budget of about half the model, so that some cast-capable modules stay resident and others not."""
    return comfy().model_management.module_size(model) // 2


@pytest.mark.parametrize("name", ["dit", "vae", "umt5", "umt5_fp8", "whisper", "wav2vec2"])
def test_lowvram_casts_exactly_the_offloaded_modules(built: dict, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Partially loaded through a stock ModelPatcher, one forward casts every stored tensor of the offloaded modules
    once (their bytes exactly) and nothing of the resident ones; the output equals the fully loaded one."""
    mm, model_patcher = comfy().model_management, comfy().model_patcher
    model, forward = built[name]
    with torch.no_grad():
        expected = forward()
    holder = pack("nodes.memory").Holder(model)
    patcher = model_patcher.ModelPatcher(holder, CPU, CPU)
    patcher.load(CPU, lowvram_model_memory=lowvram_budget(model))
    offloaded = [m for m in model.modules() if hasattr(m, "prev_comfy_cast_weights")]
    resident = [m for _, m in tensor_modules(model) if not hasattr(m, "prev_comfy_cast_weights")]
    assert offloaded and resident, name
    cast: list[torch.Tensor] = []
    real = mm.cast_to
    monkeypatch.setattr(mm, "cast_to", lambda t, *a, **k: cast.append(t) or real(t, *a, **k))
    try:
        with torch.no_grad():
            out = forward()
    finally:
        monkeypatch.undo()
        patcher.unpatch_model(CPU)
    idle = [model.get_submodule(n) for n in NOT_CALLED.get(name.split("_")[0], ())]
    used = [m for m in offloaded if all(m is not i for i in idle)]
    stored = {id(t): t for m in used for t in m.state_dict(keep_vars=True).values() if t is not None}
    names = {id(t): n for n, t in model.state_dict(keep_vars=True).items()}
    missed = sorted(names.get(i, "?") for i in stored.keys() ^ {id(t) for t in cast})
    assert used and {id(t) for t in cast} == stored.keys(), (name, missed)
    # the distinct cast tensors are exactly the bytes of the offloaded modules that ran
    distinct = {id(t): t for t in cast}.values()
    assert sum(t.numel() * t.element_size() for t in distinct) == sum(mm.module_size(m) for m in used)
    assert torch.equal(out, expected), (name, rel_l2(out.float(), expected.float()))


def test_unpatch_restores_the_loader_built_dits_lora_weights_exactly() -> None:
    """The DiT with the DMD LoRA as the loader node builds it: partially loaded, its forward equals the engine's
    LoRA forward; after unpatch_model every weight is bit for bit what was loaded."""
    loaded, patcher = managed().load_managed_dit(DIT_V15, torch.float32, version="v1.5", lora_path=DMD_LORA_V15)
    engine = pack("pipeline.checkpoints.dit_loader").load_dit(
        DIT_V15, dtype=torch.float32, version="v1.5", lora_path=DMD_LORA_V15
    )
    inputs = tiny_inputs(loaded.config, frames=2)
    original = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    assert patcher.patches or patcher.weight_wrapper_patches
    patcher.load(CPU, lowvram_model_memory=lowvram_budget(loaded.model))
    assert any(hasattr(m, "prev_comfy_cast_weights") for m in loaded.model.modules())
    with torch.no_grad():
        ours, theirs = loaded.model(**inputs), engine.model(**inputs)
    assert rel_l2(ours, theirs) <= 1e-5
    changed = [k for k, v in loaded.model.state_dict().items() if not torch.equal(v, original[k])]
    assert changed  # ComfyUI merged the LoRA into the resident weights
    patcher.unpatch_model(CPU)
    state = loaded.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in original.items())


def test_estimator_phase_figures_reach_load_models_gpu(built: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_for_phase hands load_models_gpu the estimator's memory_required / minimum_memory_required."""
    mm, memory = comfy().model_management, pack("nodes.memory")
    estimate = pack("pipeline.memory.estimate")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(mm, "load_models_gpu", lambda models, **kw: calls.append({"models": models, **kw}))
    configs = estimate.ModelConfigs(vae=memory.config_dict(built["vae"][0].config))
    shape = estimate.VideoShape(480, 832, 0, act_bytes=4)  # larger than a decode tile
    patcher = comfy().model_patcher.ModelPatcher(memory.Holder(built["vae"][0]), CPU, CPU)
    memory.load_for_phase([patcher], configs, shape, "decode")
    assert calls == [
        {
            "models": [patcher],
            "memory_required": estimate.memory_required(configs, shape, "decode"),
            "minimum_memory_required": estimate.minimum_memory_required(configs, shape, "decode"),
            "force_full_load": False,
        }
    ]
    assert calls[0]["memory_required"] > calls[0]["minimum_memory_required"] > 0
