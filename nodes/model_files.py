"""Where model files are found: ComfyUI's standard folders and `models/longcat/<hub repo>/` official layouts.

A loader's dropdown lists the files of its standard folder plus the official components that exist on disk, shown as
`longcat/<repo>/<path>`. Every miss produces a message naming the expected file, the folder and the download page.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import folder_paths

from ..pipeline.model_catalogue import GGUF_FOLDER, GGUF_SUFFIX, LONGCAT_FOLDER, LoaderFiles, Official

OFFICIAL_PREFIX = f"{LONGCAT_FOLDER}/"
NONE_CHOICE = "none"


def register_folders() -> None:
    """Add `models/longcat` as the `longcat` model folder (extra_model_paths.yaml may add more), and list the .gguf
    files of diffusion_models/ under GGUF_FOLDER."""
    default = os.path.join(folder_paths.models_dir, LONGCAT_FOLDER)
    if LONGCAT_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[LONGCAT_FOLDER] = ([default], set())
    elif default not in folder_paths.folder_names_and_paths[LONGCAT_FOLDER][0]:
        folder_paths.add_model_folder_path(LONGCAT_FOLDER, default)
    if GGUF_FOLDER not in folder_paths.folder_names_and_paths:  # the same path list: later additions show in both
        paths = folder_paths.folder_names_and_paths["diffusion_models"][0]
        folder_paths.folder_names_and_paths[GGUF_FOLDER] = (paths, {GGUF_SUFFIX})


def longcat_roots() -> list[Path]:
    """Every folder registered as `longcat`."""
    register_folders()
    return [Path(p) for p in folder_paths.get_folder_paths(LONGCAT_FOLDER)]


def _official_location(entry: Official) -> Path | None:
    for root in longcat_roots():
        location = root / entry.relpath
        if (location / entry.marker).is_file() if entry.marker else location.is_file():
            return location
    return None


def _standard_files(kind: LoaderFiles) -> list[str]:
    """The loader's single files: its standard folder's, plus the .gguf files there when it reads GGUF."""
    register_folders()
    files = []
    for folder in filter(None, (kind.folder, kind.gguf_folder)):
        with contextlib.suppress(KeyError):  # an old ComfyUI without this folder name
            files += folder_paths.get_filename_list(folder)
    return files


def where(kind: LoaderFiles) -> str:
    """Where a loader's files go (for its tooltip): the official folders, or a single file in the standard folder."""
    official = ", ".join(entry.relpath for entry in kind.official)
    return f"{official} under models/{LONGCAT_FOLDER}/, or {kind.single_file_hint} in models/{kind.folder}/"


def list_choices(kind: LoaderFiles, *, optional: bool = False) -> list[str]:
    """Dropdown entries: official components found on disk first, then the standard folder's files."""
    official = [entry.choice for entry in kind.official if _official_location(entry) is not None]
    return ([NONE_CHOICE] if optional else []) + official + _standard_files(kind)


def resolve(kind: LoaderFiles, choice: str) -> Path:
    """The file or folder of a dropdown entry; raises FileNotFoundError with a message a user can act on."""
    if choice.startswith(OFFICIAL_PREFIX):
        entry = next((e for e in kind.official if e.choice == choice), None)
        if entry is not None:
            location = _official_location(entry)
            if location is not None:
                return location
    else:
        register_folders()
        gguf = kind.gguf_folder is not None and choice.endswith(GGUF_SUFFIX)
        found = folder_paths.get_full_path(kind.gguf_folder if gguf else kind.folder, choice)
        if found is not None:
            return Path(found)
    raise FileNotFoundError(missing_message(kind, choice))


def missing_message(kind: LoaderFiles, choice: str) -> str:
    """What to do when `choice` is not on disk: the expected file, the folders, the download page."""
    entry = next((e for e in kind.official if e.choice == choice), None)
    roots = ", ".join(str(r) for r in longcat_roots())
    if entry is not None:
        expected = entry.relpath + (f"/{entry.marker}" if entry.marker else "")
        what = ", ".join(filter(None, (entry.label, entry.note)))
        return (
            f"{kind.label} '{choice}' not found: expected the file {expected} under the longcat model folder "
            f"({roots}), laid out as the hub repository ships it ({what}). "
            f"Download it from {entry.page} into {roots}/{entry.repo}/."
        )
    folders = ", ".join(folder_paths.get_folder_paths(kind.folder))
    pages = ", ".join(sorted({e.page for e in kind.official}))
    return (
        f"{kind.label} file '{choice}' not found in the {kind.folder} folder ({folders}). Expected {kind.single_file_hint}, "
        f"or the official layout under {roots} (e.g. {kind.official[0].repo}/{kind.official[0].path}). "
        f"Download pages: {pages}."
    )


def download_page(kind: LoaderFiles, choice: str) -> str:
    """The hub page of the repository a choice belongs to (the first official one otherwise)."""
    entry = next((e for e in kind.official if e.choice == choice), kind.official[0])
    return entry.page
