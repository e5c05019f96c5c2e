"""Which model files a ComfyUI installation holds for LongCat Avatar v1.0 and v1.5, and what is still missing.

Official folder layouts live under `models/longcat/<hub repository>/`; single files in the standard folders are
recognised by their tensor names (read from the safetensors header, no weights loaded), never by their file names.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .shared import model_catalogue as catalogue

HUB = "https://huggingface.co/meituan-longcat/"
REPACKAGED = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged"
V15, V10, BASE = "LongCat-Video-Avatar-1.5", "LongCat-Video-Avatar", "LongCat-Video"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors headers are a few MB at most; larger means a corrupt file
GB = 1e9


@dataclass(frozen=True)
class Option:
    """One way to satisfy a component: an official folder/file under models/longcat/, or a kind of single file."""

    label: str
    official: str = ""  # path under the longcat folder, e.g. "LongCat-Video-Avatar-1.5/base_model"
    marker: str = ""  # a file that must exist inside `official` ("" when `official` is itself the file)
    kind: str = ""  # single-file kind recognised by tensor names in `folder`
    folder: str = ""  # the standard ComfyUI folder of single files
    size_gb: float = 0.0
    size_note: str = ""  # where the size comes from when it is not exact
    page: str = ""


@dataclass(frozen=True)
class Component:
    """A part the graph needs for one version (any of its options will do)."""

    name: str
    options: tuple[Option, ...]
    required: bool = True
    why: str = ""


DIT_V15 = Component(
    "avatar model (DiT)",
    (
        Option("v1.5 int8 DiT", f"{V15}/base_model_int8", "config.json", size_gb=15.88, page=HUB + V15),
        Option("v1.5 bf16 DiT", f"{V15}/base_model", "config.json", size_gb=31.71, page=HUB + V15),
        Option("single-file v1.5 DiT", kind="dit_v1.5", folder="diffusion_models"),
    ),
)
LORA_V15 = Component(
    "distillation LoRA",
    (
        Option("DMD LoRA", f"{V15}/lora/dmd_lora.safetensors", size_gb=2.5, size_note="reported", page=HUB + V15),
        Option("single-file LongCat LoRA", kind="lora", folder="loras"),
    ),
    required=False,
    why="the recommended 8-step v1.5 sampling; without it v1.5 runs 20-50 full steps with guidance",
)
WHISPER = Component(
    "audio encoder (whisper-large-v3)",
    (
        Option("whisper-large-v3", f"{V15}/whisper-large-v3", "config.json", size_gb=6.17, page=HUB + V15),
        Option("single-file Whisper encoder", kind="whisper", folder="audio_encoders"),
    ),
)
DIT_V10 = Component(
    "avatar model (DiT)",
    (
        Option(
            "v1.0 single-speaker DiT",
            f"{V10}/avatar_single",
            "config.json",
            size_gb=31.7,
            size_note="estimate",
            page=HUB + V10,
        ),
        Option("single-file v1.0 DiT", kind="dit_v1.0", folder="diffusion_models"),
    ),
)
DIT_V10_MULTI = Component(
    "multi-speaker DiT",
    (
        Option(
            "v1.0 multi-speaker DiT",
            f"{V10}/avatar_multi",
            "config.json",
            size_gb=31.7,
            size_note="estimate",
            page=HUB + V10,
        ),
    ),
    required=False,
    why="two people talking with v1.0 (v1.5's DiT serves one and two speakers)",
)
WAV2VEC = Component(
    "audio encoder (chinese-wav2vec2-base)",
    (
        Option(
            "chinese-wav2vec2-base",
            f"{V10}/chinese-wav2vec2-base",
            "config.json",
            size_gb=0.38,
            size_note="estimate",
            page=HUB + V10,
        ),
        Option("single-file wav2vec2 encoder", kind="wav2vec2", folder="audio_encoders"),
    ),
)
VAE = Component(
    "VAE (Wan 2.1)",
    (
        Option("Wan 2.1 VAE", f"{BASE}/vae", "config.json", size_gb=0.51, size_note="estimate", page=HUB + BASE),
        Option("wan_2.1_vae.safetensors", kind="vae", folder="vae", size_gb=0.25, size_note="approx.", page=REPACKAGED),
    ),
)
TEXT = Component(
    "text encoder (umT5-XXL)",
    (
        Option(
            "umT5-XXL (text_encoder/ and tokenizer/)",
            f"{BASE}/text_encoder",
            "config.json",
            size_gb=22.0,
            size_note="reported",
            page=HUB + BASE,
        ),
        Option(
            "umt5_xxl single file",
            kind="umt5",
            folder="text_encoders",
            size_gb=6.7,
            size_note="fp8, approx.",
            page=REPACKAGED,
        ),
    ),  # fmt: skip
)
SEPARATOR_V15, SEPARATOR_V10 = (
    Component(
        "vocal separator",
        (Option(o.label, o.relpath, size_gb=o.size_gb, page=o.page),),
        required=False,
        why=catalogue.SEPARATOR_WHY,
    )
    for o in (catalogue.VOCAL_SEPARATOR_V15, catalogue.VOCAL_SEPARATOR_V10)
)
VERSION_COMPONENTS = {
    "1.5": (DIT_V15, LORA_V15, WHISPER, VAE, TEXT, SEPARATOR_V15),
    "1.0": (DIT_V10, DIT_V10_MULTI, WAV2VEC, VAE, TEXT, SEPARATOR_V10),
}
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

    component: Component
    found: list[Found] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when at least one option is on disk."""
        return bool(self.found)


def safetensors_keys(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from a .safetensors header ({} when the file is not a safetensors file)."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if not 0 < length < MAX_HEADER_BYTES:
                return {}
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return {}
    return {k: v.get("shape", []) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}


def classify(keys: dict[str, list[int]]) -> str | None:
    """The kind of a single file from its tensor names: dit_v1.5, dit_v1.0, lora, whisper, wav2vec2, vae, umt5."""
    names = " ".join(keys)
    if "audio_proj.proj1" in names and "x_embedder" in names:
        width = next((s[1] for k, s in keys.items() if "audio_proj.proj1." in k and len(s) == 2), 0)
        return "dit_v1.0" if width == 5 * 12 * 768 else "dit_v1.5"  # window 5 x 12 wav2vec2 layers x 768 channels
    if "lora___lorahyphen___" in names:
        return "lora"
    if "encoder.layers.0.self_attn" in names and "conv1" in names:
        return "whisper"
    if "feature_extractor.conv_layers" in names or "feature_projection" in names:
        return "wav2vec2"
    if "SelfAttention" in names and "block.0.layer" in names:
        return "umt5"
    if "decoder" in names and ("encoder.conv1" in names or "encoder.conv_in" in names):
        return "vae"
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
        if option.official:
            hits = [root / option.official for root in self.folders("longcat")]
            return [p for p in hits if ((p / option.marker).is_file() if option.marker else p.is_file())]
        found = []
        for folder in self.folders(option.folder):
            for path in sorted(folder.rglob("*.safetensors")):
                if self.kind_of(path) == option.kind:
                    found.append(path)
        return found


def inventory(folders: ModelFolders, version: str) -> list[ComponentReport]:
    """What one version needs and what was found."""
    reports = []
    for component in VERSION_COMPONENTS[version]:
        report = ComponentReport(component)
        for option in component.options:
            report.found += [Found(option, path) for path in folders.find(option)]
        reports.append(report)
    return reports


def download_advice(component: Component, longcat_root: Path | None) -> list[str]:
    """Lines saying what to download for a missing component, with sizes and pages."""
    lines = []
    for option in component.options:
        if not option.page:
            continue
        size = f"{option.size_gb:.1f} GB" if option.size_gb else "size unknown"
        size += f" ({option.size_note})" if option.size_note else ""
        if option.official:
            target = (longcat_root / option.official) if longcat_root else Path("models/longcat") / option.official
            inside = option.official.split("/", 1)[1] + ("/" if option.marker else "")
            lines.append(f"{option.label}: {size} from {option.page} ({inside}) into {target}")
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
