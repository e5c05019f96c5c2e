"""Video Combine: IMAGE frames + the original AUDIO → an MP4 (H.264 + AAC) in output/, previewed, returned as VIDEO."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import folder_paths
from comfy.cli_args import args
from comfy_api.latest import InputImpl, io, ui

from ..pipeline.limits import MAX_FPS, MIN_FPS
from ..pipeline.versions import native_fps_text
from ..pipeline.video.atomic_file import remove_stale_partials
from ..pipeline.video.audio_fit import AudioMuxError, audio_dict_to_array, fit_to_duration, to_aac_rate
from ..pipeline.video.framerate import FRAME_RATE_MODES, fit_to_audio_count, iter_frame_rate
from ..pipeline.video.mux import Mp4Settings, save_mp4
from .choices import check_choices
from .types import CATEGORY

log = logging.getLogger(__name__)

DEFAULT_FPS = 25.0  # v1.5's native rate


def rate_inputs() -> list[io.Input]:
    """Output frame rate, the frames' native rate, and how to convert between them."""
    return [
        io.Float.Input(
            "frame_rate",
            default=DEFAULT_FPS,
            min=MIN_FPS,
            max=MAX_FPS,
            step=1.0,
            round=0.001,
            tooltip="Frame rate of the MP4. The frames are converted from source_fps to this rate keeping "
            "the duration, so lips stay in sync with the audio.",
        ),
        io.Float.Input(
            "source_fps",
            default=0.0,
            min=0.0,
            max=120.0,
            step=1.0,
            round=0.001,
            tooltip=f"Frame rate the frames were generated at: connect Decode's fps output ({native_fps_text()}). "
            "0 means the frames already are at frame_rate.",
        ),
        io.Combo.Input(
            "frame_rate_conversion",
            options=list(FRAME_RATE_MODES),
            default="nearest",
            tooltip="nearest: repeat or drop whole frames (crisp mouths). blend: mix the two nearest frames "
            "(smoother motion, slight ghosting).",
        ),
    ]


class VideoCombine(io.ComfyNode):
    """Writes the talking video with its soundtrack and returns it as a core VIDEO."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """Inputs: frames, audio, output fps (converted from the frames' native fps), file name and quality."""
        return io.Schema(
            node_id="LongCatAvatarVideoCombine",
            display_name="LongCat Avatar Video Combine",
            category=CATEGORY,
            description="Writes the frames and the original audio to an MP4 (H.264 yuv420p + AAC) in ComfyUI's output "
            "folder, never overwriting a file, with the workflow embedded; previews it and returns a VIDEO.",
            inputs=[
                io.Image.Input("images", tooltip="The video frames, e.g. from LongCat Avatar Decode."),
                io.Audio.Input(
                    "audio",
                    optional=True,
                    tooltip="The original speech (not the separated vocals). It is trimmed or padded with silence to "
                    "the video's length. Leave unconnected for a silent video.",
                ),
                *rate_inputs(),
                io.String.Input(
                    "filename_prefix",
                    default="LongCatAvatar/avatar",
                    tooltip="Name of the file in ComfyUI's output folder; a subfolder may be given with '/'. A counter "
                    "is appended and existing files are never overwritten.",
                ),
                io.Int.Input(
                    "crf",
                    default=19,
                    min=0,
                    max=51,
                    tooltip="H.264 quality: lower is better and bigger. 19 is visually near-lossless; 23 is x264's "
                    "default.",
                ),
            ],
            outputs=[
                io.Video.Output(
                    "video", display_name="video", tooltip="The MP4 as a core VIDEO (for Save Video etc.)."
                ),
                io.String.Output("filename", display_name="filename", tooltip="Path of the MP4 inside output/."),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, frame_rate_conversion: str) -> bool | str:
        """Refuse an unknown conversion before anything runs (ComfyUI does not check V3 combos)."""
        return check_choices(frame_rate_conversion=(frame_rate_conversion, FRAME_RATE_MODES))

    @classmethod
    def execute(
        cls,
        images: Any,
        frame_rate: float,
        source_fps: float,
        frame_rate_conversion: str,
        filename_prefix: str,
        crf: int,
        audio: dict[str, Any] | None = None,
    ) -> io.NodeOutput:
        """Convert the frame rate, fit the audio, write a new MP4 and preview it."""
        if images is None or images.dim() != 4 or images.shape[0] == 0:
            raise ValueError("LongCat Avatar Video Combine: 'images' holds no frame.")
        source = source_fps or frame_rate
        samples, rate = None, 0
        if audio is not None:
            try:
                samples, rate = to_aac_rate(*audio_dict_to_array(audio))
            except AudioMuxError as error:
                raise ValueError(f"LongCat Avatar Video Combine: {error}") from error
        audio_s = None if samples is None else samples.shape[1] / rate
        count = fit_to_audio_count(images.shape[0], source, frame_rate, audio_s)
        frames = iter_frame_rate(images, source, frame_rate, frame_rate_conversion, count)  # streamed, not copied
        duration = count / frame_rate
        soundtrack = None if samples is None else (fit_to_duration(samples, rate, duration), rate)
        output_dir = folder_paths.get_output_directory()
        folder, stem, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, output_dir, images.shape[2], images.shape[1]
        )
        settings = Mp4Settings(crf=float(crf))
        path = save_mp4(folder, stem, counter, frames, frame_rate, soundtrack, cls._metadata(), settings)
        log.info("LongCat Avatar: wrote %s (%d frames at %g fps, %.2f s)", path, count, frame_rate, duration)
        relative = str(Path(subfolder, path.name).as_posix())
        preview = ui.PreviewVideo([ui.SavedResult(path.name, subfolder, io.FolderType.output)])
        return io.NodeOutput(InputImpl.VideoFromFile(str(path)), relative, ui=preview)

    @classmethod
    def _metadata(cls) -> dict[str, str]:
        """The prompt and the UI workflow as MP4 tags, as ComfyUI's own Save Video embeds them."""
        if args.disable_metadata:
            return {}
        metadata: dict[str, str] = {}
        if cls.hidden.prompt is not None:
            metadata["prompt"] = json.dumps(cls.hidden.prompt)
        for key, value in (cls.hidden.extra_pnginfo or {}).items():
            metadata[key] = json.dumps(value)
        return metadata


def remove_interrupted_writes() -> None:
    """At start-up: delete the hidden temporary videos a killed server left anywhere in output/."""
    removed = remove_stale_partials(folder_paths.get_output_directory(), recursive=True)
    if removed:
        log.info("LongCat Avatar: removed %d unfinished video file(s) left by an interrupted run", len(removed))
