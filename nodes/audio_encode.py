"""Audio Encode: one or two speakers' AUDIO → the model's per-frame audio features (rate fixed by the version)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import soxr
import torch
from comfy_api.latest import io

from ..pipeline.audio.features import compute_audio_features
from ..pipeline.audio.input import audio_to_mono
from ..pipeline.audio.multi_speaker import MODES, arrange_tracks, compute_multi_speaker_features
from ..pipeline.limits import MAX_NOISE_SEED
from ..pipeline.versions import VERSIONS
from .choices import check_choices
from .core_audio_encoder import encoder_handle
from .managed import audio_encode_phase
from .payloads import AudioEmbedsPayload, SpeakerLayout
from .types import CATEGORY, AudioEmbeds, AudioEncoderModel
from .vocal_separation import OFF, WHERE, as_audio, separate_audio, separator_input

log = logging.getLogger(__name__)

NUMBER = r"-?\d+(?:\.\d+)?"


def parse_boxes(text: str, label: str) -> list[list[float]]:
    """Boxes written as `y_min, x_min, y_max, x_max` in image pixels, one per line or separated by ';'."""
    boxes = []
    for part in re.split(r"[;\n]+", text or ""):
        if not part.strip():
            continue
        numbers = re.findall(NUMBER, part)
        if len(numbers) != 4 or re.sub(rf"{NUMBER}|[\s,\[\]()]", "", part):
            raise ValueError(f"{label}: '{part.strip()}' is not a box 'y_min, x_min, y_max, x_max' in image pixels")
        boxes.append([float(n) for n in numbers])
    return boxes


def format_boxes(boxes: Sequence[Sequence[float]]) -> str:
    """Boxes as `parse_boxes` reads them: one `y_min, x_min, y_max, x_max` line per box, in whole pixels."""
    return "\n".join(", ".join(str(round(v)) for v in box) for box in boxes)


def mix_for_video(audios: list[dict[str, Any] | None], mode: str) -> dict[str, Any]:
    """The speakers mixed into one mono AUDIO at the highest input rate (summed in para, in sequence in add)."""
    tracks = [audio_to_mono(a) if a is not None else None for a in audios]
    rate = max(t[1] for t in tracks if t is not None)
    resampled = [
        None
        if t is None
        else t[0]
        if t[1] == rate
        else soxr.resample(t[0], t[1], rate, quality="HQ").astype(np.float32)
        for t in tracks
    ]
    mixed = np.sum(arrange_tracks(resampled, mode), axis=0, dtype=np.float32)
    return {"waveform": torch.from_numpy(np.clip(mixed, -1.0, 1.0))[None, None], "sample_rate": int(rate)}


def speech_for_features(audio: dict[str, Any] | None, separate_vocals: str) -> dict[str, Any] | None:
    """What the encoder hears: the audio itself, or its vocals when separation is on."""
    if audio is None or separate_vocals == OFF:
        return audio
    stems = separate_audio(audio, separate_vocals)
    return as_audio(stems.vocals, stems.sample_rate)


class AudioEncode(io.ComfyNode):
    """Turns speech into LongCat audio features; a second speaker switches to two-person generation."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """Encoder, speaker audio(s), speaker regions, mode and the v1.0 noise seed."""
        return io.Schema(
            node_id="LongCatAvatarAudioEncode",
            display_name="LongCat Avatar Audio Encode",
            category=CATEGORY,
            description="Computes the audio conditioning of the whole track ("
            + ", ".join(f"{s.encoder_kind} at {s.feature_rate} Hz for {s.version}" for s in VERSIONS.values())
            + "; the rate is fixed by the model version). Connect audio_2 for two speakers.",
            inputs=[
                io.MultiType.Input(
                    "audio_encoder",
                    types=[AudioEncoderModel, io.AudioEncoder],
                    tooltip="From LongCat Avatar Audio Encoder Loader, or ComfyUI's Load Audio Encoder with "
                    + " or ".join(f"{s.encoder_name} ({s.version})" for s in VERSIONS.values())
                    + ": only its weights are used.",
                ),
                io.Audio.Input("audio", tooltip="Speech of the (first) speaker; any sample rate, mono or stereo."),
                io.Audio.Input(
                    "audio_2",
                    optional=True,
                    tooltip="Speech of a second speaker: turns on two-person generation (needs a multi-speaker model).",
                ),
                io.Combo.Input(
                    "mode",
                    options=list(MODES),
                    default="para",
                    tooltip="Two speakers only. para: both tracks play at the same time (a shorter one is padded with "
                    "silence). add: speaker 1 talks first, then speaker 2 (a conversation).",
                ),
                io.String.Input(
                    "speaker_boxes",
                    default="",
                    tooltip="Two speakers only: where each speaker is in the portrait, one box per line as "
                    "'y_min, x_min, y_max, x_max' in portrait pixels (speaker 1 first). Empty: left and right halves.",
                ),
                io.Mask.Input(
                    "speaker_1_mask", optional=True, tooltip="Two speakers: speaker 1's region (overrides boxes)."
                ),
                io.Mask.Input(
                    "speaker_2_mask", optional=True, tooltip="Two speakers: speaker 2's region (overrides boxes)."
                ),
                io.String.Input(
                    "extra_people_boxes",
                    default="",
                    tooltip="Two speakers: other, silent people in the picture, one 'y_min, x_min, y_max, x_max' box "
                    "per line; they are conditioned on silence so they keep their mouths shut.",
                ),
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=MAX_NOISE_SEED,
                    tooltip="v1.0 adds a faint (-45 dB) random noise floor to the audio before wav2vec2; this seed "
                    "makes it reproducible. Unused by v1.5.",
                ),
                separator_input(
                    "separate_vocals",
                    with_off=True,
                    tooltip="Separate the voice from music and noise first, as the official demos do (MDX-Net "
                    "Kim_Vocal_2.onnx; needs onnxruntime): the features come from the vocals, the video keeps the "
                    "original audio. off: the audio as it is (clean speech, text to speech). auto: the first "
                    f"separator found ({WHERE}).",
                ),
            ],
            outputs=[
                AudioEmbeds.Output(display_name="audio_embeds", tooltip="Audio features for the sampler."),
                io.Audio.Output(
                    display_name="audio", tooltip="The soundtrack for Video Combine: the input, or both speakers mixed."
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, mode: str) -> bool | str:
        """Refuse an unknown mode before anything runs (ComfyUI does not check V3 combos)."""
        return check_choices(mode=(mode, MODES))

    @classmethod
    def execute(
        cls,
        audio_encoder: Any,
        audio: dict[str, Any],
        mode: str,
        speaker_boxes: str,
        extra_people_boxes: str,
        seed: int,
        audio_2: dict[str, Any] | None = None,
        speaker_1_mask: torch.Tensor | None = None,
        speaker_2_mask: torch.Tensor | None = None,
        separate_vocals: str = OFF,
    ) -> io.NodeOutput:
        """Encode one speaker, or two with their layout (with our encoder, or a core AUDIO_ENCODER's weights)."""
        masks = [speaker_1_mask, speaker_2_mask]
        if any(m is not None for m in masks) and not all(m is not None for m in masks):
            raise ValueError("LongCat Avatar Audio Encode: connect both speaker masks, or none (then boxes are used).")
        try:
            audio_encoder = encoder_handle(audio_encoder, "audio_encoder")
            speech = [speech_for_features(a, separate_vocals) for a in (audio, audio_2)]
            if audio_encoder.patcher is not None:
                audio_encode_phase(audio_encoder.encoder, audio_encoder.patcher, speech)
            if audio_2 is None:
                features = compute_audio_features(speech[0], audio_encoder.encoder, seed=seed)
                payload = AudioEmbedsPayload(features, None, audio)
            else:
                layout = SpeakerLayout(
                    boxes=parse_boxes(speaker_boxes, "speaker_boxes") or None,
                    masks=masks if masks[0] is not None else None,
                    extra_boxes=parse_boxes(extra_people_boxes, "extra_people_boxes"),
                )
                if layout.boxes is not None and len(layout.boxes) != 2:
                    raise ValueError(
                        f"speaker_boxes: give exactly 2 boxes (speaker 1, speaker 2), got {len(layout.boxes)}"
                    )
                features = compute_multi_speaker_features(
                    speech, audio_encoder.encoder, mode, len(layout.extra_boxes), seed=seed
                )
                payload = AudioEmbedsPayload(features, layout, mix_for_video([audio, audio_2], mode))
        except ValueError as error:  # AudioInputError, VocalSeparatorError and bad boxes: the user's input
            raise ValueError(f"LongCat Avatar Audio Encode: {error}") from error
        log.info(
            "LongCat Avatar: audio %.2f s -> features %s (%s, %d fps video)",
            features.source_duration_s,
            tuple(features.features.shape),
            features.version,
            features.fps,
        )
        return io.NodeOutput(payload, payload.soundtrack)
