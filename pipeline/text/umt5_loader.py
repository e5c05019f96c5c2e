"""Load the umT5 encoder from the official `text_encoder/` folder or a ComfyUI single file (fp8 "scaled" kept in fp8)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..checkpoints.errors import CheckpointError
from ..checkpoints.fp8 import FP8_DTYPES, INPUT_SCALE, SCALE
from ..checkpoints.fp8 import MARKER as FP8_MARKER
from ..checkpoints.quantized import set_submodule
from ..checkpoints.weight_files import read_weights
from ..model_catalogue import LONGCAT_FOLDER, TOKENIZER_FOLDER, UMT5, UMT5_FILE
from ..operations import resolve_operations
from .tokenizer import load_tokenizer_folder, tokenizer_from_spiece

if TYPE_CHECKING:  # transformers' model stack is imported when an encoder is built: a ComfyUI start stays lighter
    from transformers import PreTrainedTokenizerBase, UMT5Config, UMT5EncoderModel

DOWNLOAD_HINT = (
    f"Use {UMT5.repo}'s {UMT5.path}/ + {TOKENIZER_FOLDER}/ folders ({UMT5.page}, as models/{LONGCAT_FOLDER}/{UMT5.repo}/) "
    f"or a umT5-XXL .safetensors in models/{UMT5_FILE.folder}/ (e.g. umt5_xxl_fp8_e4m3fn_scaled.safetensors from "
    f"{UMT5_FILE.page})."
)
MARKER = "encoder.block.0.layer.0.SelfAttention.q.weight"  # every T5-family encoder file has it
UMT5_MARKER = "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"  # umT5: a bias in every block
SCALE_SUFFIXES = (SCALE, "weight_scale")  # ComfyUI scaled-fp8 names of a Linear's dequantisation scale
DROPPED_SUFFIXES = (INPUT_SCALE, "input_scale", *SCALE_SUFFIXES)
FP8_WEIGHT_NAME = "weight_fp8"  # where a T5 fp8 Linear keeps its fp8 tensor (see `t5_fp8_class`)
UMT5_MAX_DISTANCE = 128  # umT5-XXL's relative_attention_max_distance; not recoverable from tensor shapes


class TextEncoderFormatError(ValueError):
    """The file or folder is not a umT5 encoder this loader understands."""


@dataclass
class LoadedTextEncoder:
    """A umT5 encoder with its tokenizer."""

    model: UMT5EncoderModel
    tokenizer: PreTrainedTokenizerBase


def t5_fp8_class(fp8_linear: type) -> type:
    """The fp8 Linear class keeping its fp8 tensor as `weight_fp8`, with `weight = None`.

    transformers' T5 feed-forward casts its input to `wo.weight.dtype` unless that is int8 (UMT5DenseGatedActDense),
    which would turn the activations into fp8; without a `weight` tensor it leaves them alone.
    """
    attrs = {"stored_names": (FP8_WEIGHT_NAME, SCALE), "weight": None, "__module__": __name__}
    return type(fp8_linear.__name__, (fp8_linear,), attrs)


def _scale_of(raw: dict[str, torch.Tensor], layer: str) -> torch.Tensor | None:
    return next((raw[f"{layer}.{s}"] for s in SCALE_SUFFIXES if f"{layer}.{s}" in raw), None)


def split_state(raw: dict[str, torch.Tensor], dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], dict[str, tuple]]:
    """(state dict to assign, fp8 layers -> (fp8 dtype, scale shape)): fp8 weights and their scales stay as stored
    (under `weight_fp8` / `scale_weight`), the other floats go to `dtype`; markers and input scales are dropped."""
    fp8 = {key[: -len(".weight")] for key, v in raw.items() if v.dtype in FP8_DTYPES and key.endswith(".weight")}
    state, layers = {}, {}
    for name in fp8:
        scale = _scale_of(raw, name)
        scale = torch.ones((), dtype=torch.float32) if scale is None else scale.to(torch.float32)
        state[f"{name}.{FP8_WEIGHT_NAME}"], state[f"{name}.{SCALE}"] = raw[f"{name}.weight"], scale
        layers[name] = (raw[f"{name}.weight"].dtype, tuple(scale.shape))
    for key, value in raw.items():
        if key in (FP8_MARKER, "spiece_model") or key.rsplit(".", 1)[-1] in DROPPED_SUFFIXES:
            continue
        if key.endswith(".weight") and key[: -len(".weight")] in fp8:
            continue
        state[key] = value.to(dtype) if value.is_floating_point() else value
    return state, layers


def config_from_state(state: dict[str, torch.Tensor]) -> UMT5Config:
    """umT5 encoder config read from tensor shapes."""
    from transformers import UMT5Config

    if MARKER not in state or UMT5_MARKER not in state:
        raise TextEncoderFormatError(f"not a umT5 encoder (needs {MARKER!r} and {UMT5_MARKER!r}). {DOWNLOAD_HINT}")
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.block."))
    buckets, heads = state[UMT5_MARKER].shape
    d_model = int(state["shared.weight"].shape[1])
    wi_0 = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"
    return UMT5Config(
        vocab_size=int(state["shared.weight"].shape[0]),
        d_model=d_model,
        d_kv=int(state[MARKER].shape[0]) // int(heads),
        d_ff=int(state[wi_0].shape[0]),
        num_layers=layers,
        num_heads=int(heads),
        relative_attention_num_buckets=int(buckets),
        relative_attention_max_distance=UMT5_MAX_DISTANCE,
        feed_forward_proj="gated-gelu",  # umT5 uses a gated-GELU FFN (wi_0, wi_1)
        tie_word_embeddings=False,
    )


def build_encoder(state: dict[str, torch.Tensor], fp8: dict[str, tuple], operations: Any) -> UMT5EncoderModel:
    """A umT5 encoder built on the meta device, fp8 Linears swapped for the namespace's fp8 class, `state` assigned."""
    from transformers import UMT5EncoderModel

    config = config_from_state({k.replace(FP8_WEIGHT_NAME, "weight"): v for k, v in state.items()})
    with torch.device("meta"):
        model = UMT5EncoderModel(config)
    fp8_class = t5_fp8_class(resolve_operations(operations).Fp8Linear)
    for name, (fp8_dtype, scale_shape) in fp8.items():
        linear = model.get_submodule(name)
        layer = fp8_class(
            linear.in_features, linear.out_features, linear.bias is not None, "meta", None, fp8_dtype, scale_shape
        )
        set_submodule(model, name, layer)
    state.setdefault("encoder.embed_tokens.weight", state["shared.weight"])
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise TextEncoderFormatError(
            f"does not match a umT5 encoder: missing {missing[:3]}, unexpected {unexpected[:3]}. " + DOWNLOAD_HINT
        )
    return model.eval()


def load_single_file(
    path: Path, dtype: torch.dtype, tokenizer_dir: Path | None = None, operations: Any = None
) -> LoadedTextEncoder:
    """Load a single-file umT5 encoder (fp8 weights stay fp8); the tokenizer comes from its `spiece_model` tensor
    or `tokenizer_dir`."""
    try:
        raw = read_weights(path)
    except CheckpointError as exc:
        raise TextEncoderFormatError(f"{exc}. {DOWNLOAD_HINT}") from exc
    if MARKER not in raw or UMT5_MARKER not in raw:
        raise TextEncoderFormatError(f"{path.name} is not a umT5 encoder (no {UMT5_MARKER!r}). {DOWNLOAD_HINT}")
    if "spiece_model" in raw:
        tokenizer = tokenizer_from_spiece(raw["spiece_model"].numpy().tobytes())
    elif tokenizer_dir is not None:
        tokenizer = load_tokenizer_folder(tokenizer_dir)
    else:
        raise TextEncoderFormatError(f"{path.name} carries no tokenizer; give the tokenizer/ folder. {DOWNLOAD_HINT}")
    state, fp8 = split_state(raw, dtype)
    try:
        model = build_encoder(state, fp8, operations)
    except TextEncoderFormatError as exc:
        raise TextEncoderFormatError(f"{path.name} {exc}") from exc
    return LoadedTextEncoder(model, tokenizer)


def load_folder(encoder_dir: Path, tokenizer_dir: Path, dtype: torch.dtype) -> LoadedTextEncoder:
    """Load the official `text_encoder/` (transformers UMT5EncoderModel) and `tokenizer/` folders."""
    from transformers import UMT5EncoderModel

    model = UMT5EncoderModel.from_pretrained(str(encoder_dir), dtype=dtype).eval()
    return LoadedTextEncoder(model, load_tokenizer_folder(tokenizer_dir))


def resolve_folders(path: Path) -> tuple[Path, Path]:
    """(text_encoder dir, tokenizer dir) for a LongCat-Video root, its text_encoder/ folder, or a combined folder."""
    if (path / UMT5.path / UMT5.marker).is_file():
        return path / UMT5.path, path / TOKENIZER_FOLDER
    if (path / UMT5.marker).is_file():
        sibling = path.parent / TOKENIZER_FOLDER
        return path, sibling if sibling.is_dir() else path
    raise TextEncoderFormatError(f"no umT5 config.json in {path} (nor in {path / UMT5.path}). {DOWNLOAD_HINT}")


def load_text_encoder(
    path: str | Path,
    dtype: torch.dtype = torch.bfloat16,
    tokenizer_dir: str | Path | None = None,
    operations: Any = None,
) -> LoadedTextEncoder:
    """Load umT5 from a folder layout or a single .safetensors file (format detected from tensor names); the fp8
    Linears of a single file are built from `operations` (default: the engine's)."""
    path = Path(path)
    if path.is_dir():
        encoder_dir, found_tokenizer = resolve_folders(path)
        return load_folder(encoder_dir, Path(tokenizer_dir) if tokenizer_dir else found_tokenizer, dtype)
    if path.is_file() and path.suffix == ".safetensors":
        return load_single_file(path, dtype, Path(tokenizer_dir) if tokenizer_dir else None, operations)
    raise TextEncoderFormatError(f"text encoder not found or not a .safetensors file: {path}. {DOWNLOAD_HINT}")
