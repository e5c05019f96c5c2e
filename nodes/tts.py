"""Text to Speech: text → core AUDIO with espeak-ng, offline. Any other AUDIO-producing node plugs in the same way."""

from __future__ import annotations

import logging

import torch
from comfy_api.latest import io

from ..pipeline import tts
from .types import CATEGORY

log = logging.getLogger(__name__)


class TextToSpeech(io.ComfyNode):
    """Speaks a text with espeak-ng and returns it as AUDIO for Audio Encode and Video Combine."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """Inputs: text, voice, rate and pitch; output: core AUDIO."""
        return io.Schema(
            node_id="LongCatAvatarTextToSpeech",
            display_name="LongCat Avatar Text to Speech (espeak-ng)",
            category=CATEGORY,
            description="Offline speech synthesis with the espeak-ng program (install it with your system's package "
            "manager). Robotic but clear; any other node that outputs AUDIO can replace it.",
            inputs=[
                io.String.Input(
                    "text",
                    multiline=True,
                    default="Hello! I am a talking portrait made with LongCat Avatar.",
                    tooltip="What the avatar says. The video lasts as long as the speech.",
                ),
                io.String.Input(
                    "voice",
                    default="en-us",
                    tooltip="espeak-ng voice or language code: en-us, en-gb, de, fr-fr, es, cmn (Mandarin), ja, ... "
                    "Append +f3, +m2 etc. for a variant. `espeak-ng --voices` lists them all.",
                ),
                io.Int.Input(
                    "rate",
                    default=tts.DEFAULT_RATE,
                    min=tts.MIN_RATE,
                    max=tts.MAX_RATE,
                    step=5,
                    tooltip="Speaking rate in words per minute (espeak-ng's own default is 175).",
                ),
                io.Int.Input(
                    "pitch",
                    default=tts.DEFAULT_PITCH,
                    min=tts.MIN_PITCH,
                    max=tts.MAX_PITCH,
                    tooltip="Voice pitch: 50 is the voice's normal pitch, lower is deeper.",
                ),
            ],
            outputs=[io.Audio.Output(display_name="audio", tooltip="The speech (mono, espeak-ng's 22.05 kHz).")],
        )

    @classmethod
    def validate_inputs(cls, voice: str) -> bool | str:
        """Refuse a missing espeak-ng or an unknown voice before anything runs, saying what to do."""
        try:
            problem = tts.check_voice(voice)
        except tts.SpeechError as error:
            return str(error)
        return problem or True

    @classmethod
    def execute(cls, text: str, voice: str, rate: int, pitch: int) -> io.NodeOutput:
        """Synthesise the speech and wrap it as AUDIO {waveform [1, channels, n], sample_rate}."""
        try:
            speech = tts.synthesize(text, voice=voice, rate=rate, pitch=pitch)
        except tts.SpeechError as error:
            raise ValueError(f"LongCat Avatar Text to Speech: {error}") from error
        log.info("LongCat Avatar: spoke %d characters with '%s' (%.2f s)", len(text), voice, speech.duration_s)
        waveform = torch.from_numpy(speech.samples).unsqueeze(0)
        return io.NodeOutput({"waveform": waveform, "sample_rate": speech.sample_rate})
