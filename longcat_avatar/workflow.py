"""API-format workflows from workflows/: find the right one and fill it, locating nodes by class_type (never by id)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import WorkflowError
from .params import VERSIONS, GenerationParams, custom_size
from .shared import model_catalogue as catalogue
from .shared import resolution as sizes
from .shared import sampling as mode
from .shared import versions

WORKFLOWS_DIR = Path(__file__).resolve().parents[1] / "workflows"
PACK_PREFIX = "LongCatAvatar"
TTS_NODE = "LongCatAvatarTextToSpeech"
COMBINE_NODE = "LongCatAvatarVideoCombine"
SAMPLER_NODE = "LongCatAvatarSampler"
DECODE_NODE = "LongCatAvatarDecode"

Workflow = dict[str, dict[str, Any]]


def _is(*names: str) -> Callable[[str], bool]:
    return lambda class_type: class_type in names


def _pack_node(word: str) -> Callable[[str], bool]:
    return lambda class_type: class_type.startswith(PACK_PREFIX) and word in class_type


@dataclass(frozen=True)
class Slot:
    """A value the client sets: which nodes carry it and the input names it may have there (first found wins)."""

    matches: Callable[[str], bool]
    inputs: tuple[str, ...]
    node_label: str


SLOTS: dict[str, Slot] = {
    "image": Slot(_is("LoadImage"), ("image",), "LoadImage"),
    "audio": Slot(_is("LoadAudio"), ("audio",), "LoadAudio"),
    "speech_text": Slot(_is(TTS_NODE), ("text",), TTS_NODE),
    "voice": Slot(_is(TTS_NODE), ("voice",), TTS_NODE),
    "steps": Slot(_pack_node("Sampler"), ("steps", "num_inference_steps"), "the LongCat Avatar sampler"),
    "guidance": Slot(
        _pack_node("Sampler"),
        ("audio_guidance", "audio_guidance_scale", "audio_cfg", "audio_scale"),
        "the LongCat Avatar sampler",
    ),
    "text_guidance": Slot(
        _pack_node("Sampler"),
        ("text_guidance", "text_guidance_scale", "text_cfg", "text_scale", "cfg"),
        "the LongCat Avatar sampler",
    ),
    "seed": Slot(_pack_node("Sampler"), ("seed", "noise_seed"), "the LongCat Avatar sampler"),
    "fps": Slot(_is(COMBINE_NODE), ("frame_rate", "fps"), COMBINE_NODE),
    "filename_prefix": Slot(_is(COMBINE_NODE), ("filename_prefix",), COMBINE_NODE),
    "resolution": Slot(_pack_node("Portrait"), ("resolution",), "LongCat Avatar Portrait Encode"),
    "width": Slot(_pack_node("Portrait"), ("width",), "LongCat Avatar Portrait Encode"),
    "height": Slot(_pack_node("Portrait"), ("height",), "LongCat Avatar Portrait Encode"),
    "distilled": Slot(_pack_node("Sampler"), ("distilled",), "the LongCat Avatar sampler"),
    "lora": Slot(_is("LongCatAvatarModelLoader"), ("lora",), "LongCatAvatarModelLoader"),
    "prompt": Slot(_pack_node("TextEncode"), ("prompt", "positive", "text"), "LongCat Avatar Text Encode"),
    "separate_vocals": Slot(_pack_node("AudioEncode"), ("separate_vocals",), "LongCat Avatar Audio Encode"),
}


def is_api_format(data: Any) -> bool:
    """True for an API-format workflow: {node id: {class_type, inputs}}."""
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(n, dict) and "class_type" in n and isinstance(n.get("inputs"), dict) for n in data.values())
    )


def load_workflow(path: str | Path) -> Workflow:
    """Read an API-format workflow file (a UI-format file gets a message saying how to export the API format)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise WorkflowError(f"workflow file {path} does not exist") from error
    except (OSError, ValueError) as error:
        raise WorkflowError(f"workflow file {path} is not readable JSON: {error}") from error
    if not is_api_format(data):
        hint = " It is a UI-format workflow; in ComfyUI use Workflow > Export (API)." if "nodes" in data else ""
        raise WorkflowError(f"{path} is not an API-format workflow ({{id: {{class_type, inputs}}}}).{hint}")
    return data


def class_types(workflow: Workflow) -> set[str]:
    """The node classes a workflow uses."""
    return {node["class_type"] for node in workflow.values()}


def workflow_version(workflow: Workflow, path: Path | None = None) -> str | None:
    """The model version a workflow runs ("1.5" / "1.0"): from its loaders' file names, else from its file name."""
    names = " ".join(str(v) for n in workflow.values() if "Loader" in n["class_type"] for v in n["inputs"].values())
    if "Avatar-1.5" in names or "whisper" in names.lower():
        return "1.5"
    if "LongCat-Video-Avatar/" in names or "wav2vec2" in names.lower():
        return "1.0"
    stem = path.stem.lower() if path is not None else ""
    for version in ("1.5", "1.0"):
        if re.search(rf"v?{version[0]}[._-]?{version[2]}(?!\d)", stem):
            return version
    return None


def find_workflow(version: str, *, tts: bool = False, folder: Path = WORKFLOWS_DIR) -> Path:
    """The API-format workflow in `folder` for `version` with LoadAudio (or the TTS node when `tts`)."""
    candidates: list[Path] = []
    for path in sorted(folder.glob("*.json")):
        try:
            workflow = load_workflow(path)
        except WorkflowError:
            continue  # UI-format files and others
        kinds = class_types(workflow)
        audio_ok = TTS_NODE in kinds if tts else "LoadAudio" in kinds and TTS_NODE not in kinds
        if "LoadImage" in kinds and COMBINE_NODE in kinds and audio_ok and workflow_version(workflow, path) == version:
            candidates.append(path)
    if not candidates:
        kind = "text-to-speech" if tts else "LoadImage + LoadAudio"
        raise WorkflowError(
            f"no API-format {kind} workflow for v{version} in {folder}. Pass one with --workflow (export it from "
            "ComfyUI with Workflow > Export (API))."
        )
    return min(candidates, key=_plainness)


def _plainness(path: Path) -> tuple[int, int, int, str]:
    """Sort key preferring the main example: one speech input, 'single' in the name, then the shortest name."""
    audio_nodes = sum(n["class_type"] in ("LoadAudio", TTS_NODE) for n in load_workflow(path).values())
    return (audio_nodes != 1, "single" not in path.stem, len(path.name), path.name)


def nodes_for(workflow: Workflow, role: str) -> list[tuple[str, dict[str, Any], str]]:
    """(node id, node, input name) for every node that carries `role`."""
    slot = SLOTS[role]
    found = []
    for node_id, node in workflow.items():
        if slot.matches(node["class_type"]):
            name = next((n for n in slot.inputs if n in node["inputs"]), None)
            if name is not None:
                found.append((node_id, node, name))
    return found


def read_value(workflow: Workflow, role: str) -> Any:
    """The workflow's own value for `role` (None when absent or linked to another node)."""
    for _, node, name in nodes_for(workflow, role):
        value = node["inputs"][name]
        if not isinstance(value, list):  # a list is a link [source node id, output index]
            return value
    return None


def fill_workflow(workflow: Workflow, values: dict[str, Any]) -> Workflow:
    """A copy of `workflow` with every non-None value set on the nodes of its role; a missing node is an error."""
    filled = copy.deepcopy(workflow)
    for role, value in values.items():
        if value is None:
            continue
        targets = nodes_for(filled, role)
        if not targets:
            slot = SLOTS[role]
            raise WorkflowError(
                f"the workflow has no {slot.node_label} node with an input named {' or '.join(slot.inputs)} "
                f"to set {role}={value!r}"
            )
        for _, node, name in targets:
            node["inputs"][name] = value
    return filled


def lora_role(workflow: Workflow) -> str:
    """The LoRA the workflow loads, as the engine's mode decision needs it: none, the DMD LoRA, or another.

    Known here by its official path only; the server also recognises a renamed copy by its tensors.
    """
    lora = read_value(workflow, "lora")
    if lora in (None, mode.LORA_NONE):
        return mode.LORA_NONE
    official = [spec.distill_lora_path for spec in versions.VERSIONS.values() if spec.distill_lora_path]
    return mode.LORA_DISTILLATION if str(lora).replace("\\", "/").endswith(tuple(official)) else mode.LORA_OTHER


def sampling_mode(workflow: Workflow) -> mode.SamplingMode:
    """What the workflow's sampler will run (the engine's own decision, from the workflow's values)."""
    version = versions.get_version(workflow_version(workflow) or VERSIONS[0])
    values = {role: read_value(workflow, role) for role in ("distilled", "steps", "text_guidance", "guidance")}
    try:
        return mode.sampling_mode(
            version.version,
            values["distilled"] or "off",
            lora_role(workflow),
            int(values["steps"] or 1),
            float(values["text_guidance"] or mode.NO_GUIDANCE),
            float(values["guidance"] or mode.NO_GUIDANCE),
        )
    except ValueError as error:
        raise WorkflowError(f"the workflow's LongCat Avatar sampler cannot run: {error}") from error


def generation_values(params: GenerationParams) -> dict[str, Any]:
    """The workflow values of the generation parameters (None keeps the workflow's own value)."""
    size = custom_size(params.resolution) if params.resolution else None
    return {
        "width": size[0] if size else None,
        "height": size[1] if size else None,
        "steps": params.steps,
        "guidance": params.guidance,
        "text_guidance": params.text_guidance,
        "fps": params.fps,
        "seed": params.seed,
        "resolution": sizes.CUSTOM_MODE if size else params.resolution,
        "prompt": params.prompt,
        "distilled": params.distilled,
        "lora": "none" if params.distilled == "off" else None,  # full sampling runs without the distillation LoRA
        "separate_vocals": _separation_choice(params.separate_vocals),
    }


def _separation_choice(separate: bool | None) -> str | None:
    """Audio Encode's separate_vocals value: the first separator found, off, or None (the workflow's own)."""
    if separate is None:
        return None
    return catalogue.SEPARATION_AUTO if separate else catalogue.SEPARATION_OFF
