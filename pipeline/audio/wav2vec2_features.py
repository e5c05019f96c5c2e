"""v1.0 audio path: chinese-wav2vec2-base features at 32 Hz, as the reference's get_audio_embedding_wav2vec2."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..versions import VERSIONS
from .layer_outputs import collect_hidden_states
from .loudness import normalize_loudness
from .timing import num_feature_steps
from .types import ENCODER_SAMPLE_RATE

# The reference adds white noise 45 dB below full scale so that silent stretches do not normalise to garbage.
NOISE_FLOOR_DB = -45.0
# ...and softens transients with a causal 3rd-order Butterworth low-pass at 3 kHz (speech formant range).
LOWPASS_HZ = 3000.0
LOWPASS_ORDER = 3


def noise_floor(num_samples: int, seed: int | np.random.RandomState = 0) -> np.ndarray:
    """The additive −45 dBFS white noise; `seed` feeds numpy's legacy RandomState, as `np.random.seed` + randn."""
    rng = seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
    return rng.randn(num_samples) * 10 ** (NOISE_FLOOR_DB / 20)


def smooth_transients(samples: np.ndarray, sample_rate: int = ENCODER_SAMPLE_RATE) -> np.ndarray:
    """Causal 3 kHz Butterworth low-pass (scipy butter + lfilter)."""
    import scipy.signal  # imported on first use: ComfyUI starts faster

    b, a = scipy.signal.butter(LOWPASS_ORDER, LOWPASS_HZ / (sample_rate / 2))
    return scipy.signal.lfilter(b, a, samples)


def _record(trace: dict | None, name: str, value: np.ndarray | torch.Tensor) -> None:
    """Store an intermediate result for parity tests when a trace dict is given."""
    if trace is not None:
        trace[name] = torch.as_tensor(np.asarray(value) if isinstance(value, np.ndarray) else value).detach().cpu()


@torch.inference_mode()
def wav2vec2_hidden_states(model: torch.nn.Module, input_values: np.ndarray, steps: int, trace: dict | None = None):
    """All 13 hidden states [13, steps, H] with the CNN features linearly resampled to `steps` BEFORE the transformer."""
    param = next(model.parameters())
    values = torch.from_numpy(np.ascontiguousarray(input_values, dtype=np.float32))[None]
    conv = model.feature_extractor(values.to(param.device, param.dtype)).transpose(1, 2)
    _record(trace, "conv_features", conv[0])
    conv = F.interpolate(conv.transpose(1, 2), size=steps, mode="linear", align_corners=True).transpose(1, 2)
    _record(trace, "conv_features_interp", conv[0])
    hidden, _ = model.feature_projection(conv)
    states = collect_hidden_states(model.encoder.layers, lambda: model.encoder(hidden).last_hidden_state)
    return torch.stack([s[0] for s in states], dim=0)


def wav2vec2_embedding(speech: np.ndarray, encoder, *, noise: np.ndarray, trace: dict | None = None) -> torch.Tensor:
    """Full v1.0 embedding [int(duration·32), 12, H] of a 16 kHz mono track, given the noise floor to add."""
    steps = num_feature_steps(len(speech), ENCODER_SAMPLE_RATE, VERSIONS["v1.0"].feature_rate)
    normalized = normalize_loudness(np.asarray(speech, dtype=np.float64))
    _record(trace, "loudness_normalized", normalized)
    noisy = normalized + noise
    _record(trace, "noise_added", noisy)
    smoothed = smooth_transients(noisy)
    _record(trace, "low_passed", smoothed)
    input_values = encoder.feature_extractor(smoothed, sampling_rate=ENCODER_SAMPLE_RATE).input_values[0]
    _record(trace, "input_values", input_values)
    states = wav2vec2_hidden_states(encoder.model, input_values, steps, trace)
    _record(trace, "hidden_states", states)
    # Layer outputs 1..12 (state 0 is the pre-transformer embedding), stacked per step: [steps, 12, H].
    return states[1:].transpose(0, 1).float().cpu().contiguous()
