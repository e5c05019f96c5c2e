"""Vocal Separation: AUDIO → the vocals and the rest, with the official demos' Kim_Vocal_2.onnx run by onnxruntime.

The same step runs inside Audio Encode when its `separate_vocals` input is on: the features then come from the vocals
while the video keeps the original audio, as in LongCat-Video's demo scripts.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import folder_paths
import torch
from comfy_api.latest import io

from ..pipeline.audio.input import audio_channels
from ..pipeline.audio.vocal_separation import Stems, VocalSeparatorError, load_vocal_separator
from ..pipeline.model_catalogue import LONGCAT_FOLDER, SEPARATOR_FOLDER, VOCAL_SEPARATOR
from ..pipeline.model_catalogue import SEPARATION_AUTO as AUTO
from ..pipeline.model_catalogue import SEPARATION_OFF as OFF
from . import model_files as mf
from .runtime import NodeProgress, torch_device
from .types import CATEGORY

log = logging.getLogger(__name__)

SEPARATOR_EXTENSIONS = {".onnx"}
WHERE = " or ".join(f"models/{LONGCAT_FOLDER}/{entry.relpath}" for entry in VOCAL_SEPARATOR.official) + (
    f", or {VOCAL_SEPARATOR.single_file_hint} in models/{SEPARATOR_FOLDER}/"
)


def register_separator_folder() -> None:
    """Add `models/audio_separation` (ONNX files) as a ComfyUI model folder, unless another pack did."""
    default = os.path.join(folder_paths.models_dir, SEPARATOR_FOLDER)
    if SEPARATOR_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[SEPARATOR_FOLDER] = ([default], set(SEPARATOR_EXTENSIONS))
    else:
        paths, extensions = folder_paths.folder_names_and_paths[SEPARATOR_FOLDER]
        folder_paths.folder_names_and_paths[SEPARATOR_FOLDER] = (paths, set(extensions) | SEPARATOR_EXTENSIONS)


def separator_choices() -> list[str]:
    """The separator files on disk: official layouts first, then models/audio_separation/."""
    register_separator_folder()
    return mf.list_choices(VOCAL_SEPARATOR)


def separator_input(name: str, *, with_off: bool, tooltip: str) -> io.Combo.Input:
    """The dropdown of separator files, led by "auto" (and "off" where separation is optional)."""
    options = ([OFF] if with_off else []) + [AUTO] + separator_choices()
    return io.Combo.Input(name, options=options, default=options[0], optional=with_off, tooltip=tooltip)


def _resolve(choice: str) -> str:
    if choice == AUTO:
        found = separator_choices()
        if not found:
            raise VocalSeparatorError(
                f"no vocal separator found: expected {WHERE}. Download it with `python -m longcat_avatar download` "
                f"(or from {VOCAL_SEPARATOR.official[0].page}), or turn vocal separation off."
            )
        choice = found[0]
    try:
        return str(mf.resolve(VOCAL_SEPARATOR, choice))
    except FileNotFoundError as error:
        raise VocalSeparatorError(str(error)) from error


def separate_audio(audio: dict[str, Any], choice: str) -> Stems:
    """Separate one AUDIO with the chosen model file, with a progress bar and Cancel between chunks."""
    path = _resolve(choice)
    waveform, rate = audio_channels(audio)
    separator = load_vocal_separator(path, accelerated=torch_device().type != "cpu")
    progress: list[NodeProgress] = []

    def on_chunk(done: int, total: int) -> None:
        if not progress:
            progress.append(NodeProgress(total))
        progress[0](done, total)

    stems = separator.separate(waveform, rate, on_chunk)
    log.info("LongCat Avatar: separated %.2f s of audio with %s", waveform.shape[-1] / rate, path)
    return stems


def as_audio(samples: Any, sample_rate: int) -> dict[str, Any]:
    """A ComfyUI AUDIO from `[channels, samples]`."""
    return {"waveform": torch.from_numpy(samples)[None], "sample_rate": int(sample_rate)}


class VocalSeparation(io.ComfyNode):
    """Splits a recording into its vocals and everything else (music, noise)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """Audio and the separator file; vocals and the rest out."""
        return io.Schema(
            node_id="LongCatAvatarVocalSeparation",
            display_name="LongCat Avatar Vocal Separation",
            category=CATEGORY,
            description="Separates the voice from music and noise with the MDX-Net model the official LongCat demos "
            "use (Kim_Vocal_2.onnx, run by onnxruntime). Audio Encode can do this itself (separate_vocals).",
            inputs=[
                io.Audio.Input("audio", tooltip="Any recording; any sample rate, mono or stereo."),
                separator_input(
                    "separator",
                    with_off=False,
                    tooltip=f"The separator model: auto takes the first one found ({WHERE}). Needs onnxruntime.",
                ),
            ],
            outputs=[
                io.Audio.Output(display_name="vocals", tooltip="The voice, 44.1 kHz stereo."),
                io.Audio.Output(display_name="rest", tooltip="Everything but the voice (music, noise), 44.1 kHz."),
            ],
        )

    @classmethod
    def execute(cls, audio: dict[str, Any], separator: str) -> io.NodeOutput:
        """Separate, or explain what is missing."""
        try:
            stems = separate_audio(audio, separator)
        except ValueError as error:  # VocalSeparatorError and AudioInputError: what the user can fix
            raise ValueError(f"LongCat Avatar Vocal Separation: {error}") from error
        return io.NodeOutput(as_audio(stems.vocals, stems.sample_rate), as_audio(stems.rest, stems.sample_rate))
