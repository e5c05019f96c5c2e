"""Which model files a ComfyUI installation holds for LongCat Avatar v1.0 and v1.5, and what is still missing.

Official folder layouts live under `models/longcat/<hub repository>/`; single files in the standard folders are
recognised by their tensor names (read from the safetensors or GGUF header, no weights loaded), never by their file names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .shared import model_catalogue as catalogue
from .shared import weight_headers

GB = 1e9
Option = catalogue.Official | catalogue.SingleFile
# Folder names ComfyUI uses (and their legacy aliases).
FOLDER_ALIASES = {"diffusion_models": ("diffusion_models", "unet"), "text_encoders": ("text_encoders", "clip")}


@dataclass
class Found:
    """Where a component option was found."""

    option: Option
    path: Path


@dataclass
class ComponentReport:
    """One component of one version: what was found, or what to download."""

    component: catalogue.Component
    found: list[Found] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when at least one option is on disk."""
        return bool(self.found)


def safetensors_keys(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from a weight file's header ({} when it is not a safetensors or GGUF file)."""
    try:
        tensors, _ = weight_headers.read_header(path)
    except ValueError:  # CheckpointError: not a weight file, or a corrupt header
        return {}
    return {name: list(info.shape) for name, info in tensors.items()}


def classify(keys: dict[str, list[int]]) -> str | None:
    """The kind of a single file from its tensor names: dit_v1.5, dit_v1.0, lora, whisper, wav2vec2, vae, umt5."""
    names, c = " ".join(keys), catalogue
    if "audio_proj.proj1" in names and "x_embedder" in names:
        width = next((s[1] for k, s in keys.items() if "audio_proj.proj1." in k and len(s) == 2), 0)
        return c.KIND_DIT_V10 if width == 5 * 12 * 768 else c.KIND_DIT_V15  # window 5 x 12 wav2vec2 layers x 768
    if "lora___lorahyphen___" in names:
        return c.KIND_LORA
    if "encoder.layers.0.self_attn" in names and "conv1" in names:
        return c.KIND_WHISPER
    if "feature_extractor.conv_layers" in names or "feature_projection" in names:
        return c.KIND_WAV2VEC2
    if "SelfAttention" in names and "block.0.layer" in names:
        return c.KIND_UMT5
    if "decoder" in names and ("encoder.conv1" in names or "encoder.conv_in" in names):
        return c.KIND_VAE
    return None


class ModelFolders:
    """The model folders of one ComfyUI installation: models/ plus extra_model_paths.yaml entries."""

    def __init__(self, model_roots: list[Path], extra: dict[str, list[Path]] | None = None) -> None:
        self.model_roots = model_roots
        self.extra = extra or {}
        self._kinds: dict[Path, str | None] = {}

    def folders(self, name: str) -> list[Path]:
        """Every existing folder registered under a ComfyUI folder name (e.g. `vae`, `longcat`)."""
        names = FOLDER_ALIASES.get(name, (name,))
        candidates = [root / alias for root in self.model_roots for alias in names]
        candidates += [p for alias in names for p in self.extra.get(alias, [])]
        unique = dict.fromkeys(p.resolve() for p in candidates if p.is_dir())
        return list(unique)

    def kind_of(self, path: Path) -> str | None:
        """The classified kind of a single file (cached)."""
        if path not in self._kinds:
            self._kinds[path] = classify(safetensors_keys(path))
        return self._kinds[path]

    def find(self, option: Option) -> list[Path]:
        """Where an option exists on disk."""
        if isinstance(option, catalogue.Official):
            hits = [root / option.relpath for root in self.folders(catalogue.LONGCAT_FOLDER)]
            return [p for p in hits if ((p / option.marker).is_file() if option.marker else p.is_file())]
        found = []
        for folder in self.folders(option.folder):
            paths = (p for p in folder.rglob("*") if p.suffix in catalogue.WEIGHT_SUFFIXES and p.is_file())
            for path in sorted(paths):
                if self.kind_of(path) == option.kind:
                    found.append(path)
        return found


def inventory(folders: ModelFolders, version: str) -> list[ComponentReport]:
    """What one version needs and what was found."""
    reports = []
    for component in catalogue.VERSION_COMPONENTS[version]:
        report = ComponentReport(component)
        for option in component.options:
            report.found += [Found(option, path) for path in folders.find(option)]
        reports.append(report)
    return reports


def download_advice(component: catalogue.Component, longcat_root: Path | None) -> list[str]:
    """Lines saying what to download for a missing component, with sizes and pages."""
    lines = []
    for option in component.options:
        if not option.page:
            continue
        size = f"{option.size_gb:.1f} GB" if option.size_gb else "size unknown"
        size += f" ({option.size_note})" if option.size_note else ""
        if isinstance(option, catalogue.Official):
            root = longcat_root or Path("models") / catalogue.LONGCAT_FOLDER
            inside = option.path + ("/" if option.marker else "")
            lines.append(f"{option.label}: {size} from {option.page} ({inside}) into {root / option.relpath}")
        else:
            lines.append(f"{option.label}: {size} from {option.page} into models/{option.folder}/")
    return lines


def read_extra_model_paths(path: Path) -> dict[str, list[Path]]:
    """Folder name -> paths from an extra_model_paths.yaml (needs PyYAML, which ComfyUI installs)."""
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (ImportError, OSError, ValueError):
        return {}
    extra: dict[str, list[Path]] = {}
    for section in data.values() if isinstance(data, dict) else []:
        if not isinstance(section, dict):
            continue
        base = Path(os.path.expanduser(str(section.get("base_path", ""))))
        for name, value in section.items():
            if name in ("base_path", "is_default") or not isinstance(value, str):
                continue
            extra.setdefault(name, []).extend(base / line.strip() for line in value.splitlines() if line.strip())
    return extra
