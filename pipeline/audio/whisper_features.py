"""v1.5 audio path: whisper-large-v3 encoder layer groups at 25 Hz, as the reference's get_audio_embedding_whisper."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..versions import VERSIONS
from .layer_outputs import collect_hidden_states
from .loudness import normalize_loudness
from .timing import num_feature_steps
from .types import ENCODER_SAMPLE_RATE

# Half-open ranges over the 33 hidden states (0 = embedding output, 32 = last layer after the final LayerNorm):
# four means of eight states and the last state alone, hard-coded in the reference for whisper-large-v3.
LAYER_GROUPS = ((0, 8), (8, 16), (16, 24), (24, 32), (32, 33))
# Whisper's encoder emits 50 frames per second (10 ms mel hop, then a stride-2 convolution).
ENCODER_RATE = 50


def _record(trace: dict | None, name: str, value: torch.Tensor | np.ndarray) -> None:
    """Store an intermediate result for parity tests when a trace dict is given."""
    if trace is not None:
        trace[name] = torch.as_tensor(value).detach().cpu()


def log_mel_chunks(speech: np.ndarray, feature_extractor) -> torch.Tensor:
    """Log-mel features [mel, 3000·chunks]: each 30 s chunk is padded to 30 s and normalised on its own."""
    chunk = feature_extractor.n_samples  # 480,000 samples = 30 s at 16 kHz
    mels = [
        feature_extractor(speech[i : i + chunk], sampling_rate=ENCODER_SAMPLE_RATE, return_tensors="pt").input_features[
            0
        ]
        for i in range(0, len(speech), chunk)
    ]
    return torch.cat(mels, dim=-1)


@torch.inference_mode()
def whisper_layer_groups(model: torch.nn.Module, mel: torch.Tensor, window: int, trace: dict | None = None):
    """Grouped encoder states [frames50, 5, D]: the encoder runs on each `window`-frame mel window separately."""
    param = next(model.parameters())
    grouped = []
    for index, start in enumerate(range(0, mel.shape[-1], window)):
        chunk = mel[None, :, start : start + window].to(param.device, param.dtype)
        states = collect_hidden_states(model.layers, lambda chunk=chunk: model(chunk).last_hidden_state)
        stacked = torch.stack([s[0] for s in states], dim=0)  # [33, 1500, D]
        if index == 0:
            _record(trace, "hidden_states_chunk0", stacked)
        grouped.append(torch.stack([stacked[a:b].mean(dim=0) for a, b in LAYER_GROUPS], dim=1))
    return torch.cat(grouped, dim=0)


def whisper_embedding(speech: np.ndarray, encoder, *, trace: dict | None = None) -> torch.Tensor:
    """Full v1.5 embedding [int(duration·25), 5, D] of a 16 kHz mono track."""
    steps = num_feature_steps(len(speech), ENCODER_SAMPLE_RATE, VERSIONS["v1.5"].feature_rate)
    normalized = normalize_loudness(np.asarray(speech))
    _record(trace, "loudness_normalized", normalized)
    mel = log_mel_chunks(normalized, encoder.feature_extractor)
    _record(trace, "mel", mel)
    grouped = whisper_layer_groups(encoder.model, mel, encoder.feature_extractor.nb_max_frames, trace)
    # Keep the 50 Hz frames of the real audio (two per 25 fps frame), then resample each group to `steps`.
    grouped = grouped[: steps * (ENCODER_RATE // VERSIONS["v1.5"].feature_rate)].float()
    resampled = F.interpolate(grouped.permute(1, 2, 0), size=steps, mode="linear", align_corners=True)
    return resampled.permute(2, 0, 1).cpu().contiguous()
