"""Find and load the Wan 2.1 VAE from the official diffusers `vae/` folder or a ComfyUI single file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..checkpoints.weight_files import read_weights
from ..model_catalogue import LONGCAT_FOLDER, VAE_FILE, WAN_VAE
from .normalization import WAN21_LATENTS_MEAN, WAN21_LATENTS_STD

if TYPE_CHECKING:  # diffusers is imported when a VAE is loaded, not with the pack: ComfyUI starts faster
    from diffusers import AutoencoderKLWan

DOWNLOAD_HINT = (
    f"Use {WAN_VAE.repo}'s {WAN_VAE.path}/ folder ({WAN_VAE.page}, placed as models/{LONGCAT_FOLDER}/{WAN_VAE.relpath}/) "
    f"or ComfyUI's {VAE_FILE.label} in models/{VAE_FILE.folder}/."
)
COMFY_MARKER = "decoder.middle.0.residual.0.gamma"  # ComfyUI / original Wan layout (what diffusers also detects)
DIFFUSERS_MARKER = "decoder.mid_block.resnets.0.norm1.gamma"  # diffusers AutoencoderKLWan layout
KNOWN_PREFIXES = ("first_stage_model.", "vae.", "model.")  # prefixes some single files put before every key


class VAEFormatError(ValueError):
    """The file or folder is not a Wan 2.1 VAE this loader understands."""


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove a common key prefix so the Wan VAE marker keys are found."""
    for prefix in KNOWN_PREFIXES:
        if any(k.startswith(prefix + "decoder.") for k in state):
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def single_file_config(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Wan 2.1 VAE config inferred from diffusers-layout tensor shapes (width and latent channels)."""
    base_dim = int(state["encoder.conv_in.weight"].shape[0])
    z_dim = int(state["post_quant_conv.weight"].shape[0])
    if z_dim != len(WAN21_LATENTS_MEAN):
        raise VAEFormatError(
            f"this VAE has {z_dim} latent channels; LongCat-Video-Avatar needs the Wan 2.1 VAE (16 channels), "
            f"not the Wan 2.2 one. {DOWNLOAD_HINT}"
        )
    return {
        "base_dim": base_dim,
        "z_dim": z_dim,
        "dim_mult": [1, 2, 4, 4],  # the Wan 2.1 architecture; the key converter assumes it too
        "num_res_blocks": 2,
        "attn_scales": [],
        "temperal_downsample": [False, True, True],
        "dropout": 0.0,
        "latents_mean": list(WAN21_LATENTS_MEAN),
        "latents_std": list(WAN21_LATENTS_STD),
    }


def load_single_file(path: Path, dtype: torch.dtype) -> AutoencoderKLWan:
    """Load a single-file Wan 2.1 VAE (ComfyUI/original or diffusers key layout), detected from tensor names."""
    from diffusers import AutoencoderKLWan
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    state = _strip_prefix(read_weights(path))
    if COMFY_MARKER in state:
        state = convert_wan_vae_to_diffusers(state)
    elif DIFFUSERS_MARKER not in state:
        raise VAEFormatError(f"{path.name} is not a Wan 2.1 VAE (no {COMFY_MARKER!r} tensor). {DOWNLOAD_HINT}")
    model = AutoencoderKLWan(**single_file_config(state))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise VAEFormatError(
            f"{path.name} does not match the Wan 2.1 VAE: {len(missing)} missing tensors (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}). {DOWNLOAD_HINT}"
        )
    return model.to(dtype).eval()


def load_folder(path: Path, dtype: torch.dtype) -> AutoencoderKLWan:
    """Load the official diffusers `vae/` folder (config.json + diffusion_pytorch_model.safetensors)."""
    from diffusers import AutoencoderKLWan

    config = json.loads((path / "config.json").read_text())
    if config.get("_class_name", "AutoencoderKLWan") != "AutoencoderKLWan":
        raise VAEFormatError(f"{path} holds a {config['_class_name']}, not AutoencoderKLWan. {DOWNLOAD_HINT}")
    return AutoencoderKLWan.from_pretrained(str(path), torch_dtype=dtype).eval()


def load_wan_vae(path: str | Path, dtype: torch.dtype = torch.float32) -> AutoencoderKLWan:
    """Load the Wan 2.1 VAE from a folder (`vae/` or its parent) or a single .safetensors file."""
    path = Path(path)
    if path.is_dir():
        folder = path / "vae" if (path / "vae" / "config.json").is_file() else path
        if not (folder / "config.json").is_file():
            raise VAEFormatError(f"no config.json in {path} (nor in {path / 'vae'}). {DOWNLOAD_HINT}")
        return load_folder(folder, dtype)
    if path.is_file() and path.suffix == ".safetensors":
        return load_single_file(path, dtype)
    raise VAEFormatError(f"VAE not found or not a .safetensors file: {path}. {DOWNLOAD_HINT}")
