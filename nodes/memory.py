"""ComfyUI's memory manager for the pack's four models: stock ModelPatchers, ComfyUI's cast protocol on modules that
transformers and diffusers build, and one `load_models_gpu` call per phase with the estimator's figures.

ModelPatcher loads a module fully or partially ("lowvram"): a module with `comfy_cast_weights` may keep its weights on
the host and cast them to the input's device at each forward; any other module holding parameters is always moved to
the device (comfy/model_patcher.py `ModelPatcher.load`). Torch layers of foreign modules become the matching class of
the namespace (`comfy.ops`); other modules that hold their own parameters (umT5's and the Wan VAE's RMS norms) get
`CastOwnTensors`, which casts them at call time and runs the module's own forward on the cast copies.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import comfy.model_management as mm
import comfy.ops
import torch
from comfy.model_patcher import ModelPatcher
from torch import nn
from torch.nn.utils import parametrize

from ..pipeline.memory.estimate import ModelConfigs, VideoShape, memory_required, minimum_memory_required

TORCH_LAYERS = ("Linear", "Conv1d", "Conv2d", "Conv3d", "GroupNorm", "LayerNorm", "Embedding")


class CastOwnTensors(comfy.ops.CastWeightBiasOp):
    """The cast protocol for a module whose forward reads its own parameters and buffers (no comfy.ops layer).

    When ComfyUI leaves it on the host, each call casts those tensors to the input's device with
    `comfy.model_management.cast_to` and runs the module's unchanged forward on the copies (`torch.func.functional_call`).
    """

    _casting = False

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's forward, on cast copies of its own tensors when ComfyUI asks for it."""
        comfy.ops.run_every_op()
        if not self.comfy_cast_weights or self._casting:
            return super().forward(*args, **kwargs)
        device = next(a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)).device
        own = [*self.named_parameters(recurse=False), *self.named_buffers(recurse=False)]
        cast = {name: mm.cast_to(tensor, None, device) for name, tensor in own}
        self._casting = True
        try:
            return torch.func.functional_call(self, cast, args, kwargs)
        finally:
            self._casting = False


@cache
def _cast_class(cls: type, protocol: type) -> type:
    """`cls` with the cast protocol of `protocol` (a comfy.ops layer or CastOwnTensors) in front of its torch base."""
    if issubclass(protocol, cls):  # a plain torch layer: the namespace's own class
        return protocol
    first, second = (protocol, cls) if protocol is CastOwnTensors else (cls, protocol)
    return type(cls.__name__, (first, second), {"__module__": cls.__module__})


def own_tensors(module: nn.Module) -> bool:
    """True when the module itself (not a child) holds parameters or buffers."""
    return any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False))


def _protocol(module: nn.Module, ops: Any) -> type | None:
    """The cast-protocol class for a module that lacks one, or None when it needs none or cannot take one."""
    if hasattr(module, "comfy_cast_weights") or not own_tensors(module):
        return None
    if parametrize.is_parametrized(module) or isinstance(module, parametrize.ParametrizationList):
        return None  # the weight is recomputed from its parametrization at every access
    if any(True for _ in module.children()):
        return None  # ModelPatcher never offloads a module with children (model_patcher._load_list)
    layer = next((name for name in TORCH_LAYERS if isinstance(module, getattr(nn, name))), None)
    return CastOwnTensors if layer is None else getattr(ops, layer)


def adopt_comfy_ops(model: nn.Module, ops: Any) -> int:
    """Give every weight-bearing leaf of `model` ComfyUI's cast protocol, in place; returns how many changed."""
    changed = 0
    for module in model.modules():
        protocol = _protocol(module, ops)
        if protocol is None:
            continue
        if isinstance(module, nn.Embedding) and not hasattr(module, "bias"):
            module.bias = None  # comfy.ops' Embedding casts a (missing) bias too
        module.__class__ = _cast_class(type(module), protocol)
        changed += 1
    return changed


def foreign_ops(dtype: torch.dtype) -> Any:
    """The namespace for modules built by transformers / diffusers, weights stored in `dtype`."""
    return comfy.ops.pick_operations(dtype, dtype, mm.get_torch_device())


class Holder(nn.Module):
    """A plain module around a transformers / diffusers model, whose `device` is a read-only property that
    ModelPatcher would assign."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model


def patcher_for(
    model: nn.Module, offload_device: torch.device, load_device: torch.device | None = None
) -> ModelPatcher:
    """A stock ModelPatcher: loaded on ComfyUI's device (or `load_device`), offloaded to `offload_device`."""
    return ModelPatcher(model, load_device=load_device or mm.get_torch_device(), offload_device=offload_device)


def load_for_phase(
    patchers: Iterable[ModelPatcher],
    configs: ModelConfigs,
    shape: VideoShape,
    phase: str,
    force_full_load: bool = False,
) -> None:
    """`load_models_gpu` for `phase`: the estimator's activation bytes for this run's shapes beside the weights."""
    mm.load_models_gpu(
        list(patchers),
        memory_required=memory_required(configs, shape, phase),
        minimum_memory_required=minimum_memory_required(configs, shape, phase),
        force_full_load=force_full_load,
    )


def config_dict(config: Any) -> dict[str, Any]:
    """A transformers / diffusers config as a plain mapping (what the estimator reads)."""
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)
