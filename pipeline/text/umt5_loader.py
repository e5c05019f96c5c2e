"""Load the umT5 encoder from the official `text_encoder/` folder or a ComfyUI single file (incl. fp8 "scaled")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import PreTrainedTokenizerBase, UMT5Config, UMT5EncoderModel

from ..model_catalogue import LONGCAT_FOLDER, TOKENIZER_FOLDER, UMT5, UMT5_FILE
from .tokenizer import load_tokenizer_folder, tokenizer_from_spiece

DOWNLOAD_HINT = (
    f"Use {UMT5.repo}'s {UMT5.path}/ + {TOKENIZER_FOLDER}/ folders ({UMT5.page}, as models/{LONGCAT_FOLDER}/{UMT5.repo}/) "
    f"or a umT5-XXL .safetensors in models/{UMT5_FILE.folder}/ (e.g. umt5_xxl_fp8_e4m3fn_scaled.safetensors from "
    f"{UMT5_FILE.page})."
)
MARKER = "encoder.block.0.layer.0.SelfAttention.q.weight"  # every T5-family encoder file has it
UMT5_MARKER = "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"  # umT5: a bias in every block
SCALE_SUFFIXES = ("scale_weight", "weight_scale")  # ComfyUI scaled-fp8 names of a Linear's dequantisation scale
DROPPED_SUFFIXES = ("scale_input", "input_scale", "scale_weight", "weight_scale")
FP8_DTYPES = tuple(getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, n))
UMT5_MAX_DISTANCE = 128  # umT5-XXL's relative_attention_max_distance; not recoverable from tensor shapes


class TextEncoderFormatError(ValueError):
    """The file or folder is not a umT5 encoder this loader understands."""


@dataclass
class LoadedTextEncoder:
    """A umT5 encoder with its tokenizer."""

    model: UMT5EncoderModel
    tokenizer: PreTrainedTokenizerBase


def dequantize_state(raw: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Turn fp8 weights into `dtype` using their stored scales (ComfyUI scaled fp8) and drop the scale tensors."""
    state = {}
    for key, value in raw.items():
        leaf = key.rsplit(".", 1)[-1]
        if key in ("scaled_fp8", "spiece_model") or leaf in DROPPED_SUFFIXES:
            continue
        if value.dtype in FP8_DTYPES:
            prefix = key[: -len("weight")]
            scale = next((raw[prefix + s] for s in SCALE_SUFFIXES if prefix + s in raw), None)
            value = value.to(torch.float32)
            if scale is not None:
                scale = scale.to(torch.float32)
                value = value * (scale.view(-1, 1) if scale.numel() > 1 else scale.reshape(()))
        state[key] = value.to(dtype)
    return state


def config_from_state(state: dict[str, torch.Tensor]) -> UMT5Config:
    """umT5 encoder config read from tensor shapes."""
    if MARKER not in state or UMT5_MARKER not in state:
        raise TextEncoderFormatError(f"not a umT5 encoder (needs {MARKER!r} and {UMT5_MARKER!r}). {DOWNLOAD_HINT}")
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.block."))
    buckets, heads = state[UMT5_MARKER].shape
    d_model = int(state["shared.weight"].shape[1])
    return UMT5Config(
        vocab_size=int(state["shared.weight"].shape[0]),
        d_model=d_model,
        d_kv=int(state[MARKER].shape[0]) // int(heads),
        d_ff=int(state["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0]),
        num_layers=layers,
        num_heads=int(heads),
        relative_attention_num_buckets=int(buckets),
        relative_attention_max_distance=UMT5_MAX_DISTANCE,
        feed_forward_proj="gated-gelu",  # umT5 uses a gated-GELU FFN (wi_0, wi_1)
        tie_word_embeddings=False,
    )


def load_single_file(path: Path, dtype: torch.dtype, tokenizer_dir: Path | None = None) -> LoadedTextEncoder:
    """Load a single-file umT5 encoder; the tokenizer comes from its `spiece_model` tensor or `tokenizer_dir`."""
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        raw = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)
    if MARKER not in raw or UMT5_MARKER not in raw:
        raise TextEncoderFormatError(f"{path.name} is not a umT5 encoder (no {UMT5_MARKER!r}). {DOWNLOAD_HINT}")
    if "spiece_model" in raw:
        tokenizer = tokenizer_from_spiece(raw["spiece_model"].numpy().tobytes())
    elif tokenizer_dir is not None:
        tokenizer = load_tokenizer_folder(tokenizer_dir)
    else:
        raise TextEncoderFormatError(f"{path.name} carries no tokenizer; give the tokenizer/ folder. {DOWNLOAD_HINT}")
    state = dequantize_state(raw, dtype)
    model = UMT5EncoderModel(config_from_state(state))
    state.setdefault("encoder.embed_tokens.weight", state["shared.weight"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TextEncoderFormatError(
            f"{path.name} does not match a umT5 encoder: missing {missing[:3]}, unexpected {unexpected[:3]}. "
            + DOWNLOAD_HINT
        )
    return LoadedTextEncoder(model.to(dtype).eval(), tokenizer)


def load_folder(encoder_dir: Path, tokenizer_dir: Path, dtype: torch.dtype) -> LoadedTextEncoder:
    """Load the official `text_encoder/` (transformers UMT5EncoderModel) and `tokenizer/` folders."""
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
    path: str | Path, dtype: torch.dtype = torch.bfloat16, tokenizer_dir: str | Path | None = None
) -> LoadedTextEncoder:
    """Load umT5 from a folder layout or a single .safetensors file (format detected from tensor names)."""
    path = Path(path)
    if path.is_dir():
        encoder_dir, found_tokenizer = resolve_folders(path)
        return load_folder(encoder_dir, Path(tokenizer_dir) if tokenizer_dir else found_tokenizer, dtype)
    if path.is_file() and path.suffix == ".safetensors":
        return load_single_file(path, dtype, Path(tokenizer_dir) if tokenizer_dir else None)
    raise TextEncoderFormatError(f"text encoder not found or not a .safetensors file: {path}. {DOWNLOAD_HINT}")
