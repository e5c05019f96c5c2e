"""The list of node classes the extension registers; each node module adds its classes here."""

from __future__ import annotations

from typing import Any

from .audio_encode import AudioEncode
from .decode import Decode
from .loaders import LOADERS
from .model_files import register_folders
from .portrait_encode import PortraitEncode
from .sampler import AvatarSampler
from .speaker_faces import SpeakerBoxesFromFaces
from .text_encode import TextEncode
from .tts import TextToSpeech
from .video_combine import VideoCombine, remove_interrupted_writes
from .vocal_separation import VocalSeparation


def all_nodes() -> list[type[Any]]:
    """Every node class of the pack, in menu order."""
    register_folders()
    remove_interrupted_writes()
    return [
        *LOADERS,
        PortraitEncode,
        SpeakerBoxesFromFaces,
        AudioEncode,
        TextEncode,
        AvatarSampler,
        Decode,
        VideoCombine,
        TextToSpeech,
        VocalSeparation,
    ]
