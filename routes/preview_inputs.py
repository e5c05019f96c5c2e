"""What the preview routes read: Load Image / Load Audio widget values turned into pixels and sound exactly as those
nodes load them, and the loaders' model widgets checked against the model folders (nodes/model_files.py)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from ..pipeline.audio.errors import AudioEncoderError, AudioInputError
from ..pipeline.preflight import AudioPlan, audio_encoder_version, plan_audio, plan_audio_all_versions

ANNOTATIONS = ("input", "output", "temp")  # ComfyUI's `name [input]` suffixes, also the /view types


class PreviewError(Exception):
    """A refused preview request: HTTP status and a reason for the user."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _base_dirs() -> list[Path]:
    import folder_paths

    return [Path(d).resolve() for d in (folder_paths.get_input_directory(), folder_paths.get_output_directory(),
                                        folder_paths.get_temp_directory())]  # fmt: skip


def input_file(name: Any, label: str) -> Path:
    """The file a Load node's widget value names, refused outside ComfyUI's input/output/temp folders."""
    import folder_paths

    if not isinstance(name, str) or not name.strip():
        raise PreviewError(400, f"'{label}' must name a file in ComfyUI's input folder")
    path = Path(folder_paths.get_annotated_filepath(name)).resolve()
    if not any(path.is_relative_to(base) for base in _base_dirs()):
        raise PreviewError(403, f"'{label}': {name} is outside ComfyUI's input, output and temp folders")
    if not path.is_file():
        raise PreviewError(404, f"'{label}': no file {name} in ComfyUI's input folder; upload it in its Load node")
    return path


def view_params(name: str) -> dict[str, str]:
    """The /view query (filename, subfolder, type) that shows the file a Load Image widget names."""
    folder_type = "input"
    for kind in ANNOTATIONS:
        if name.endswith(f" [{kind}]"):
            name, folder_type = name[: -len(kind) - 3], kind
    subfolder, _, filename = name.replace("\\", "/").rpartition("/")
    return {"filename": filename, "subfolder": subfolder, "type": folder_type}


def load_image(name: Any) -> torch.Tensor:
    """The portrait as ComfyUI's Load Image gives it to the graph: IMAGE [1, H, W, 3] in [0, 1]."""
    import nodes

    input_file(name, "image")
    try:
        return nodes.LoadImage().load_image(name)[0][:1]
    except Exception as error:  # PIL and ComfyUI raise several types for unreadable images
        raise PreviewError(422, f"'image': cannot read {name} as an image: {error}") from error


def load_audio(name: str, label: str) -> dict[str, Any]:
    """The speech as ComfyUI's Load Audio gives it to the graph: AUDIO {waveform [1, C, N], sample_rate}."""
    from comfy_extras.nodes_audio import load

    path = input_file(name, label)
    try:
        waveform, rate = load(str(path))
    except Exception as error:  # PyAV raises several types for unreadable media
        raise PreviewError(422, f"'{label}': cannot read {name} as audio: {error}") from error
    return {"waveform": waveform[None], "sample_rate": rate}


def _plan_json(plan: AudioPlan) -> dict[str, Any]:
    return {
        "version": plan.version,
        "fps": plan.fps,
        "segments": plan.num_segments,
        "frames": plan.frames,
        "generated_frames": plan.generated_frames,
    }


def _encoder_version(choice: Any) -> str | None:
    """The version the Audio Encoder Loader's choice serves, None when the file is missing or unreadable."""
    from ..nodes import model_files as mf
    from ..pipeline import model_catalogue as catalogue

    if not isinstance(choice, str) or not choice:
        return None
    try:
        return audio_encoder_version(mf.resolve(catalogue.AUDIO_ENCODER, choice))
    except (FileNotFoundError, AudioEncoderError, OSError, ValueError, KeyError):
        return None


def audio_plans(names: list[Any], mode: str, encoder_choice: Any) -> dict[str, Any]:
    """Duration, and segments and frames at the encoder's version (at every version when it is unknown)."""
    audios = [load_audio(n, label) if n else None for n, label in zip(names, ("audio", "audio_2"), strict=True)]
    audios = audios if audios[1] is not None else audios[:1]
    version = _encoder_version(encoder_choice)
    try:
        plans = [plan_audio(audios, mode, version)] if version else plan_audio_all_versions(audios, mode)
    except AudioInputError as error:
        raise PreviewError(422, str(error)) from error
    return {
        "duration_s": plans[0].duration_s,
        "speakers": len(audios),
        "version_known": version is not None,
        "plans": [_plan_json(p) for p in plans],
    }


@functools.lru_cache(maxsize=1)
def loader_widgets() -> dict[str, dict[str, tuple[Any, bool]]]:
    """node_id → {widget: (model_files kind, optional)} for every loader of the pack."""
    from ..nodes.loaders import AudioEncoderLoader, AvatarModelLoader, TextEncoderLoader, VAELoader
    from ..pipeline import model_catalogue as catalogue

    table = {
        AvatarModelLoader: {"model": (catalogue.DIT, False), "lora": (catalogue.LORA, True)},
        AudioEncoderLoader: {"audio_encoder": (catalogue.AUDIO_ENCODER, False)},
        VAELoader: {"vae": (catalogue.VAE, False)},
        TextEncoderLoader: {"text_encoder": (catalogue.TEXT_ENCODER, False)},
    }
    return {node.define_schema().node_id: widgets for node, widgets in table.items()}


def model_file_status(widget: tuple[Any, bool], choice: Any) -> dict[str, Any]:
    """{found, path} or {found: false, message, page} for one model widget's value."""
    from ..nodes import model_files as mf

    kind, optional = widget
    choice = str(choice or "")
    if optional and choice == mf.NONE_CHOICE:
        return {"found": True, "path": None}
    try:
        return {"found": True, "path": str(mf.resolve(kind, choice))}
    except FileNotFoundError as error:
        return {"found": False, "message": str(error), "page": mf.download_page(kind, choice)}
