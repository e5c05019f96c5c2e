"""Tiny models in the official folder layouts (and ComfyUI single files), built locally for tests: no downloads.

- `build_tiny_vae`: a small-width `AutoencoderKLWan` (the real Wan 2.1 structure) saved as diffusers `vae/`;
  `write_comfy_vae_file` saves the same weights in ComfyUI's `wan_2.1_vae` single-file key layout.
- `build_tiny_umt5`: a SentencePiece tokenizer trained here on a few sentences plus a 2-layer `UMT5EncoderModel`,
  saved as `tokenizer/` + `text_encoder/`; `write_comfy_umt5_file` writes ComfyUI's single file (optionally fp8
  "scaled", with the `spiece_model` tensor).
- `build_official_layout`: `models/longcat/<hub repo name>/...` with the refvec tiny DiT and audio encoders linked in,
  plus the tiny VAE / umT5 in `LongCat-Video/`, as node and command-line tests expect.
- `shorten_whisper_window`: the refvec tiny Whisper with a 3 s window instead of 30 s, for the server tests' jobs.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan
from safetensors.torch import save_file
from transformers import UMT5Config, UMT5EncoderModel

from longcat_avatar.tiny_models import VAE_BASE_DIM, train_spiece
from pipeline.text.prompt import DEFAULT_NEGATIVE_PROMPT
from pipeline.text.tokenizer import tokenizer_from_spiece

TINY_TEXT_DIM = 32  # caption_channels of the refvec tiny DiTs
TINY_VOCAB = 256  # umT5's embedding table is larger than its SentencePiece vocabulary; so is ours

CORPUS = [
    DEFAULT_NEGATIVE_PROMPT,
    "A person is talking to the camera with a calm expression, natural light, simple background.",
    "A woman with long hair speaks in a bright studio; she smiles and nods while she explains something.",
    "A man in a blue shirt gives a speech outdoors, trees behind him, the wind moves his hair.",
    "Two people talk at a table in a cafe; the one on the left listens while the other one answers.",
    "The quick brown fox jumps over the lazy dog. 0123456789 & ? ! ' \" ( ) - + = / %",
]

# Reverse of diffusers' `convert_wan_vae_to_diffusers` for the residual-block parts of a key.
_RESNET_PARTS = {"norm1": "residual.0", "conv1": "residual.2", "norm2": "residual.3", "conv2": "residual.6"}
_TOP_LEVEL = {"quant_conv": "conv1", "post_quant_conv": "conv2"}


@dataclass
class TinyTextEncoder:
    """Paths of a tiny umT5 in the official layout."""

    text_encoder_dir: Path
    tokenizer_dir: Path
    spiece: bytes


def _resnet_tail(tail: str) -> str:
    """`norm1.gamma` → `residual.0.gamma`, `conv_shortcut.weight` → `shortcut.weight`, others unchanged."""
    head, _, rest = tail.partition(".")
    if head in _RESNET_PARTS:
        return f"{_RESNET_PARTS[head]}.{rest}"
    return tail.replace("conv_shortcut.", "shortcut.")


def diffusers_vae_key_to_comfy(key: str) -> str:
    """One diffusers AutoencoderKLWan key in ComfyUI's / the original Wan layout (e.g. `decoder.upsamples.4...`)."""
    first, _, rest = key.partition(".")
    if first in _TOP_LEVEL:
        return f"{_TOP_LEVEL[first]}.{rest}"
    side, rest = first, rest
    rest = re.sub(r"^conv_in\.", "conv1.", rest)
    rest = re.sub(r"^norm_out\.", "head.0.", rest)
    rest = re.sub(r"^conv_out\.", "head.2.", rest)
    if m := re.match(r"mid_block\.resnets\.(\d)\.(.*)", rest):
        return f"{side}.middle.{2 * int(m[1])}.{_resnet_tail(m[2])}"
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", rest):
        return f"{side}.middle.1.{m[1]}"
    if m := re.match(r"down_blocks\.(\d+)\.(.*)", rest):
        return f"{side}.downsamples.{m[1]}.{_resnet_tail(m[2])}"
    if m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", rest):
        return f"{side}.upsamples.{4 * int(m[1]) + int(m[2])}.{_resnet_tail(m[3])}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.(.*)", rest):
        return f"{side}.upsamples.{4 * int(m[1]) + 3}.{m[2]}"
    return f"{side}.{rest}"


def build_tiny_vae(vae_dir: Path, seed: int = 0) -> AutoencoderKLWan:
    """A seeded tiny Wan 2.1-structured VAE saved as diffusers `vae/` (config.json + safetensors)."""
    torch.manual_seed(seed)
    model = AutoencoderKLWan(base_dim=VAE_BASE_DIM, z_dim=16).eval()
    model.save_pretrained(str(vae_dir), safe_serialization=True)
    return model


def write_comfy_vae_file(model: AutoencoderKLWan, path: Path, dtype: torch.dtype = torch.float16) -> Path:
    """Save the VAE weights in ComfyUI's single-file `wan_2.1_vae.safetensors` layout (fp16 like the real file)."""
    state = {diffusers_vae_key_to_comfy(k): v.to(dtype).contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def train_tiny_spiece() -> bytes:
    """The tests' SentencePiece model: umT5's special ids, trained here on CORPUS."""
    # 160: as large as this small corpus allows, so real words get multi-character pieces
    return train_spiece(CORPUS, vocab_size=160)


def build_tiny_umt5(root: Path, seed: int = 0, d_model: int = TINY_TEXT_DIM) -> TinyTextEncoder:
    """`root/tokenizer/` (spiece.model + tokenizer.json) and `root/text_encoder/` (a 2-layer UMT5EncoderModel)."""
    spiece = train_tiny_spiece()
    tokenizer_dir, encoder_dir = root / "tokenizer", root / "text_encoder"
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    (tokenizer_dir / "spiece.model").write_bytes(spiece)
    tokenizer_from_spiece(spiece).save_pretrained(str(tokenizer_dir))
    torch.manual_seed(seed)
    config = UMT5Config(
        vocab_size=TINY_VOCAB,
        d_model=d_model,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,  # umT5-XXL's value (single files cannot carry it)
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    )
    UMT5EncoderModel(config).eval().save_pretrained(str(encoder_dir), safe_serialization=True)
    return TinyTextEncoder(text_encoder_dir=encoder_dir, tokenizer_dir=tokenizer_dir, spiece=spiece)


def write_comfy_umt5_file(tiny: TinyTextEncoder, path: Path, fp8_scaled: bool = False) -> Path:
    """ComfyUI's umT5 single file: HF key names, `spiece_model` bytes, optionally fp8 weights with `scale_weight`."""
    model = UMT5EncoderModel.from_pretrained(str(tiny.text_encoder_dir))
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    if fp8_scaled:
        for key in [k for k, v in state.items() if v.ndim == 2 and ".layer." in k and "relative" not in k]:
            weight = state[key].float()
            scale = weight.abs().max() / 448.0  # 448 = largest float8_e4m3fn value
            state[key] = (weight / scale).to(torch.float8_e4m3fn)
            state[key[: -len("weight")] + "scale_weight"] = scale.reshape(())
        state["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    state["spiece_model"] = torch.frombuffer(bytearray(tiny.spiece), dtype=torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def _link_tree(source: Path, target: Path) -> Path:
    """Mirror a folder with real directories and symlinked files (the refvec set is read-only)."""
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        dest = target / file.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            dest.symlink_to(file)
    return target


def _write_scheduler(folder: Path, shift: float) -> None:
    """A `scheduler/scheduler_config.json` like the official FlowMatchEulerDiscreteScheduler one."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": shift, "use_dynamic_shifting": False}
    (folder / "scheduler_config.json").write_text(json.dumps(config, indent=2))


@dataclass
class OfficialLayout:
    """Where `build_official_layout` put everything."""

    models_dir: Path
    longcat_video: Path
    avatar_v10: Path
    avatar_v15: Path


def build_official_layout(models_dir: Path, refvec_root: Path, shift_v15: float = 7.0) -> OfficialLayout:
    """`models/longcat/{LongCat-Video, LongCat-Video-Avatar, LongCat-Video-Avatar-1.5}` with tiny models inside."""
    longcat = models_dir / "longcat"
    base, v10, v15 = longcat / "LongCat-Video", longcat / "LongCat-Video-Avatar", longcat / "LongCat-Video-Avatar-1.5"
    build_tiny_vae(base / "vae")
    build_tiny_umt5(base)
    _write_scheduler(base / "scheduler", 12.0)  # LongCat-Video's value as a public mirror reports it
    _link_tree(refvec_root / "dit_v1.0", v10 / "avatar_single")
    _link_tree(refvec_root / "audio" / "wav2vec2_tiny", v10 / "chinese-wav2vec2-base")
    _link_tree(refvec_root / "dit_v1.5", v15 / "base_model")
    _link_tree(refvec_root / "audio" / "whisper_tiny", v15 / "whisper-large-v3")
    _write_scheduler(v15 / "scheduler", shift_v15)
    return OfficialLayout(models_dir=models_dir, longcat_video=base, avatar_v10=v10, avatar_v15=v15)


# The window of the server tests' Whisper: their speech lasts ~1-10 s, and with 30 s windows the tiny Whisper's
# attention over 1500 positions in 32 layers was a third of every tiny job's time (~0.4 s of ~1.4 s on the CI machine).
SHORT_WHISPER_WINDOW_S = 3


def shorten_whisper_window(folder: Path, seconds: int = SHORT_WHISPER_WINDOW_S) -> None:
    """Rewrite a Whisper folder (config.json, model.safetensors, preprocessor_config.json) for `seconds`-long windows:
    the position table cut to the window's encoder positions, the feature extractor padding to `seconds`.

    The engine reads the window from the feature extractor (n_samples, nb_max_frames) and runs the encoder on each
    window; the parity tests keep the refvec model's real 30 s windows."""
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    preprocessor = json.loads((folder / "preprocessor_config.json").read_text())
    samples = seconds * preprocessor["sampling_rate"]
    frames = samples // preprocessor["hop_length"]
    positions = frames // 2  # the encoder's second convolution has stride 2
    weights = load_file(str(folder / "model.safetensors"))
    for name in [k for k in weights if k.endswith("embed_positions.weight")]:
        weights[name] = weights[name][:positions].contiguous()
    config.update(max_source_positions=positions)
    preprocessor.update(chunk_length=seconds, n_samples=samples, nb_max_frames=frames)
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        (folder / name).unlink()  # links into the read-only vector set: replaced, never written through
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))


def remove_layout(layout: OfficialLayout) -> None:
    """Delete a layout made by `build_official_layout` (links only point into the read-only vector set)."""
    shutil.rmtree(layout.models_dir / "longcat", ignore_errors=True)
