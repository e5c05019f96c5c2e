"""Where model files are found: ComfyUI's standard folders and `models/longcat/<hub repo>/` official layouts.

A loader's dropdown lists the files of its standard folder plus the official components that exist on disk, shown as
`longcat/<repo>/<path>`. Every miss produces a message naming the expected file, the folder and the download page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import folder_paths

LONGCAT_FOLDER = "longcat"
OFFICIAL_PREFIX = "longcat/"
NONE_CHOICE = "none"

HUB = "https://huggingface.co/meituan-longcat/"
REPO_BASE, REPO_V10, REPO_V15 = "LongCat-Video", "LongCat-Video-Avatar", "LongCat-Video-Avatar-1.5"
REPACKAGED = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged"  # single-file umT5 and Wan VAE


@dataclass(frozen=True)
class Official:
    """One component of an official hub repository, as the repository ships it."""

    repo: str
    path: str  # folder or file inside the repository
    marker: str  # a file that must exist inside `path` (or "" when `path` is itself the file)
    note: str

    @property
    def choice(self) -> str:
        """The dropdown entry."""
        return f"{OFFICIAL_PREFIX}{self.repo}/{self.path}"


@dataclass(frozen=True)
class ModelKind:
    """What one loader looks for."""

    label: str
    folder: str  # ComfyUI folder_paths name
    official: tuple[Official, ...]
    single_file_hint: str


DIT = ModelKind(
    "avatar model (DiT)",
    "diffusion_models",
    (
        Official(REPO_V15, "base_model", "config.json", "v1.5 bf16 DiT, single and multi speaker"),
        Official(REPO_V15, "base_model_int8", "config.json", "v1.5 int8 DiT"),
        Official(REPO_V10, "avatar_single", "config.json", "v1.0 single-speaker DiT"),
        Official(REPO_V10, "avatar_multi", "config.json", "v1.0 multi-speaker DiT"),
    ),
    "a LongCat-Video-Avatar DiT .safetensors file",
)
LORA = ModelKind(
    "LoRA",
    "loras",
    (Official(REPO_V15, "lora/dmd_lora.safetensors", "", "v1.5 8-step distillation LoRA"),),
    "a LongCat LoRA .safetensors file (e.g. dmd_lora.safetensors)",
)
AUDIO_ENCODER = ModelKind(
    "audio encoder",
    "audio_encoders",
    (
        Official(REPO_V15, "whisper-large-v3", "config.json", "Whisper large-v3 for v1.5"),
        Official(REPO_V10, "chinese-wav2vec2-base", "config.json", "chinese-wav2vec2-base for v1.0"),
    ),
    "a whisper-large-v3 (v1.5) or chinese-wav2vec2-base (v1.0) .safetensors file",
)
VAE = ModelKind(
    "VAE",
    "vae",
    (Official(REPO_BASE, "vae", "config.json", "Wan 2.1 VAE"),),
    f"wan_2.1_vae.safetensors ({REPACKAGED})",
)
TEXT_ENCODER = ModelKind(
    "text encoder",
    "text_encoders",
    (Official(REPO_BASE, "text_encoder", "config.json", "umT5-XXL encoder (tokenizer/ beside it)"),),
    f"umt5_xxl_*.safetensors ({REPACKAGED})",
)


def register_folders() -> None:
    """Add `models/longcat` as the `longcat` model folder (extra_model_paths.yaml may add more)."""
    default = os.path.join(folder_paths.models_dir, LONGCAT_FOLDER)
    if LONGCAT_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[LONGCAT_FOLDER] = ([default], set())
    elif default not in folder_paths.folder_names_and_paths[LONGCAT_FOLDER][0]:
        folder_paths.add_model_folder_path(LONGCAT_FOLDER, default)


def longcat_roots() -> list[Path]:
    """Every folder registered as `longcat`."""
    register_folders()
    return [Path(p) for p in folder_paths.get_folder_paths(LONGCAT_FOLDER)]


def _official_location(entry: Official) -> Path | None:
    for root in longcat_roots():
        location = root / entry.repo / entry.path
        if (location / entry.marker).is_file() if entry.marker else location.is_file():
            return location
    return None


def _standard_files(kind: ModelKind) -> list[str]:
    try:
        return folder_paths.get_filename_list(kind.folder)
    except KeyError:  # an old ComfyUI without this folder name
        return []


def list_choices(kind: ModelKind, *, optional: bool = False) -> list[str]:
    """Dropdown entries: official components found on disk first, then the standard folder's files."""
    official = [entry.choice for entry in kind.official if _official_location(entry) is not None]
    return ([NONE_CHOICE] if optional else []) + official + _standard_files(kind)


def default_choice(kind: ModelKind) -> str:
    """The first official component: what a workflow names when the user has the official layout."""
    return kind.official[0].choice


def resolve(kind: ModelKind, choice: str) -> Path:
    """The file or folder of a dropdown entry; raises FileNotFoundError with a message a user can act on."""
    if choice.startswith(OFFICIAL_PREFIX):
        entry = next((e for e in kind.official if e.choice == choice), None)
        if entry is not None:
            location = _official_location(entry)
            if location is not None:
                return location
    else:
        found = folder_paths.get_full_path(kind.folder, choice)
        if found is not None:
            return Path(found)
    raise FileNotFoundError(missing_message(kind, choice))


def missing_message(kind: ModelKind, choice: str) -> str:
    """What to do when `choice` is not on disk: the expected file, the folders, the download page."""
    entry = next((e for e in kind.official if e.choice == choice), None)
    roots = ", ".join(str(r) for r in longcat_roots())
    if entry is not None:
        expected = f"{entry.repo}/{entry.path}" + (f"/{entry.marker}" if entry.marker else "")
        return (
            f"{kind.label} '{choice}' not found: expected the file {expected} under the longcat model folder "
            f"({roots}), laid out as the hub repository ships it ({entry.note}). "
            f"Download it from {HUB}{entry.repo} into {roots}/{entry.repo}/."
        )
    folders = ", ".join(folder_paths.get_folder_paths(kind.folder))
    pages = ", ".join(sorted({HUB + e.repo for e in kind.official}))
    return (
        f"{kind.label} file '{choice}' not found in the {kind.folder} folder ({folders}). Expected {kind.single_file_hint}, "
        f"or the official layout under {roots} (e.g. {kind.official[0].repo}/{kind.official[0].path}). "
        f"Download pages: {pages}."
    )


def download_page(kind: ModelKind, choice: str) -> str:
    """The hub page of the repository a choice belongs to (the first official one otherwise)."""
    entry = next((e for e in kind.official if e.choice == choice), kind.official[0])
    return HUB + entry.repo
