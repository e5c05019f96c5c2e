"""Audio conditioning for LongCat-Video-Avatar: ComfyUI AUDIO -> 16 kHz -> wav2vec2 (v1.0) / Whisper (v1.5) features."""

from ..versions import VERSIONS
from .encoders import AudioEncoder, load_audio_encoder, load_audio_encoder_from_state_dict
from .errors import AudioEncoderError, AudioInputError
from .features import compute_audio_features, embed_speech, prepare_track
from .multi_speaker import compute_multi_speaker_features, merge_for_muxing
from .speaker_masks import resize_speaker_masks, speaker_masks_from_boxes, speaker_masks_from_tensors
from .types import AudioFeatures, version_spec
from .windows import gather_windows, window_indices

__all__ = [
    "VERSIONS",
    "AudioEncoder",
    "AudioEncoderError",
    "AudioFeatures",
    "AudioInputError",
    "compute_audio_features",
    "compute_multi_speaker_features",
    "embed_speech",
    "gather_windows",
    "load_audio_encoder",
    "load_audio_encoder_from_state_dict",
    "merge_for_muxing",
    "prepare_track",
    "resize_speaker_masks",
    "speaker_masks_from_boxes",
    "speaker_masks_from_tensors",
    "version_spec",
    "window_indices",
]
