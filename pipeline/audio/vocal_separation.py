"""Vocal separation with the official demos' MDX-Net model (`vocal_separator/Kim_Vocal_2.onnx`), run by onnxruntime.

The official demos call audio-separator 0.30.2 (pinned in LongCat-Video's requirements_avatar.txt) with its default
MDX settings. This module computes the same stems without it, following audio-separator's
`separator/architectures/mdx_separator.py` (`MDXSeparator.separate`, `demix`, `run_model`),
`separator/uvr_lib_v5/stft.py` (`STFT`) and `common_separator.py` (`prepare_mix`, `write_audio_pydub`). The model's
parameters are ours (`KIM_VOCAL_2`): audio-separator looks them up in tables it downloads at load time.
onnxruntime is optional: it is imported only here, when a separation runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model_catalogue import ONNXRUNTIME_HINT
from .resample import resample_like_librosa

ChunkCallback = Callable[[int, int], None]  # (chunks done, chunks in all); may raise to cancel
# Execution providers tried in this order (the ones onnxruntime offers on this machine), the CPU always last.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider")


class VocalSeparatorError(ValueError):
    """The separator model is missing, unreadable or not an MDX-Net model of the expected shape, or onnxruntime is."""


@dataclass(frozen=True)
class MdxParams:
    """What an MDX-Net ONNX model needs around it: its STFT, its input size, its gain, the chunking."""

    n_fft: int
    dim_f: int  # frequency bins the model sees: the lowest dim_f of the n_fft // 2 + 1
    dim_t: int  # STFT frames per chunk: the model's time size
    compensate: float  # gain of the model's output (UVR's calibration of each model)
    hop: int = 1024  # audio-separator's default hop_length (UVR hard-codes 1024 too)
    overlap: float = 0.25  # audio-separator's default overlap of successive chunks
    sample_rate: int = 44100  # MDX-Net models are trained on 44.1 kHz stereo
    peak: float = 0.9  # audio-separator's normalization_threshold: the mix and the stems are limited to this peak
    zeroed_bins: int = 3  # run_model silences the 3 lowest frequency bins before the model

    @property
    def chunk_size(self) -> int:
        """Samples per chunk: dim_t frames of a centred STFT."""
        return self.hop * (self.dim_t - 1)

    @property
    def trim(self) -> int:
        """Samples of padding on each side of the mix (half an FFT)."""
        return self.n_fft // 2


# UVR's model data for Kim_Vocal_2.onnx (entry 970b3f9492014d18fefeedfe4773cb42, the md5 of its last 10,000 KiB,
# in TRvlvr/application_data mdx_model_data/model_data_new.json): n_fft 7680, dim_f 3072, dim_t 2**8, compensate 1.009.
KIM_VOCAL_2 = MdxParams(n_fft=7680, dim_f=3072, dim_t=2**8, compensate=1.009)


@dataclass
class Stems:
    """The separation of one track: `[2, samples]` float32 at `sample_rate`, each limited to the model's peak."""

    vocals: np.ndarray
    rest: np.ndarray  # everything but the vocals (audio-separator's "Instrumental" stem)
    sample_rate: int


def import_onnxruntime() -> Any:
    """The onnxruntime module, or a VocalSeparatorError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise VocalSeparatorError(ONNXRUNTIME_HINT) from error
    return onnxruntime


def _providers(ort: Any, accelerated: bool) -> list[str]:
    available = set(ort.get_available_providers()) if accelerated else set()
    return [p for p in PREFERRED_PROVIDERS if p in available] + ["CPUExecutionProvider"]


def limit_peak(wave: np.ndarray, peak: float) -> np.ndarray:
    """Scale `wave` down so that its largest magnitude is `peak` (audio-separator's spec_utils.normalize)."""
    largest = float(np.abs(wave).max()) if wave.size else 0.0
    return wave * np.float32(peak / largest) if largest > peak else wave


def stereo_mix(waveform: np.ndarray, sample_rate: float, params: MdxParams) -> np.ndarray:
    """`[channels, samples]` → `[2, samples]` at the model's rate, as librosa.load(mono=False) + prepare_mix give it.

    Mono is duplicated; more than two channels are averaged to mono first (the model takes stereo).
    """
    wave = np.asarray(waveform, dtype=np.float32)
    if wave.ndim == 1:
        wave = wave[None]
    if wave.shape[0] > 2:
        wave = np.mean(wave, axis=0, dtype=np.float32)[None]
    wave = resample_like_librosa(wave, sample_rate, params.sample_rate)
    return np.ascontiguousarray(np.repeat(wave, 2, axis=0) if wave.shape[0] == 1 else wave)


class VocalSeparator:
    """An MDX-Net ONNX model in an onnxruntime session, with the parameters it needs."""

    def __init__(self, session: Any, params: MdxParams, path: Path) -> None:
        self.session = session
        self.params = params
        self.path = path
        self.input_name = session.get_inputs()[0].name
        self.window = torch.hann_window(params.n_fft, periodic=True)  # STFT's window in audio-separator's stft.py

    def _spectrum(self, chunk: np.ndarray) -> np.ndarray:
        """`[2, chunk_size]` → the model's input `[1, 4, dim_f, dim_t]`: (left re, left im, right re, right im)."""
        p = self.params
        spec = torch.stft(torch.from_numpy(chunk), p.n_fft, p.hop, window=self.window, center=True, return_complex=True)
        spec = (
            torch.view_as_real(spec).permute(0, 3, 1, 2).reshape(1, 4, -1, spec.shape[2])[:, :, : p.dim_f].contiguous()
        )
        spec[:, :, : p.zeroed_bins] = 0
        return spec.numpy()

    def _waveform(self, spectrum: np.ndarray) -> np.ndarray:
        """The model's output `[1, 4, dim_f, dim_t]` → `[2, chunk_size]` (missing high bins are zeros)."""
        p = self.params
        spec = torch.from_numpy(np.ascontiguousarray(spectrum[0], dtype=np.float32))
        bins = p.n_fft // 2 + 1
        spec = torch.cat([spec, spec.new_zeros(4, bins - spec.shape[1], spec.shape[2])], dim=1)
        spec = spec.reshape(2, 2, bins, -1).permute(0, 2, 3, 1)
        return torch.istft(torch.complex(spec[..., 0], spec[..., 1]), p.n_fft, p.hop, window=self.window).numpy()

    def run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        """The model's vocals for one `[2, chunk_size]` chunk of the padded mix."""
        (output,) = self.session.run(None, {self.input_name: self._spectrum(chunk)})[:1]
        return self._waveform(output)

    def demix(self, mix: np.ndarray, on_chunk: ChunkCallback | None = None) -> np.ndarray:
        """The compensated vocals of a `[2, samples]` mix: overlapping Hann-weighted chunks, added and normalised."""
        p = self.params
        size, samples = p.chunk_size, mix.shape[-1]
        generated = size - 2 * p.trim
        pad = generated + p.trim - samples % generated
        mixture = np.concatenate([np.zeros((2, p.trim), np.float32), mix, np.zeros((2, pad), np.float32)], axis=1)
        step = int((1 - p.overlap) * size)
        result = np.zeros(mixture.shape, dtype=np.float32)
        weight = np.zeros(mixture.shape, dtype=np.float32)
        # audio-separator (MDXSeparator.demix) also runs the chunks that start in the tail padding, past the last sample
        # kept: they add only to samples cut off below, so the vocals are the same without them (1 s: 1 chunk, not 2).
        starts = range(0, min(mixture.shape[-1], p.trim + samples), step)
        for done, start in enumerate(starts, 1):
            end = min(start + size, mixture.shape[-1])
            part = np.zeros((2, size), dtype=np.float32)
            part[:, : end - start] = mixture[:, start:end]
            window = np.hanning(end - start)  # float64, as np.hanning gives it; the products stay float32
            out = self.run_chunk(part)[:, : end - start]
            out *= window
            weight[:, start:end] += window
            result[:, start:end] += out
            if on_chunk is not None:
                on_chunk(done, len(starts))
        with np.errstate(invalid="ignore"):  # 0/0 only at the padding's outer ends, which are cut off below
            vocals = (result / weight)[:, p.trim : -p.trim][:, :samples]
        return vocals * np.float32(p.compensate)

    def separate(self, waveform: np.ndarray, sample_rate: float, on_chunk: ChunkCallback | None = None) -> Stems:
        """Vocals and the rest of a `[channels, samples]` track, at the model's rate (44.1 kHz, stereo)."""
        p = self.params
        mix = limit_peak(stereo_mix(waveform, sample_rate, p), p.peak)
        vocals = limit_peak(self.demix(mix, on_chunk), p.peak)
        rest = limit_peak(mix - vocals, p.peak)  # audio-separator subtracts, then limits the stem when writing it
        return Stems(vocals.astype(np.float32), rest.astype(np.float32), p.sample_rate)


def load_vocal_separator(
    path: str | Path, params: MdxParams = KIM_VOCAL_2, accelerated: bool = False
) -> VocalSeparator:
    """An onnxruntime session of an MDX-Net ONNX file whose input is `[batch, 4, dim_f, dim_t]` as `params` say.

    `accelerated`: use a GPU execution provider when this onnxruntime has one (else, and always as a fallback, the CPU).
    """
    path = Path(path)
    ort = import_onnxruntime()
    if not path.is_file():
        raise VocalSeparatorError(f"the vocal separator model {path} does not exist")
    try:
        session = ort.InferenceSession(str(path), providers=_providers(ort, accelerated))
    except Exception as error:  # onnxruntime raises its own exception types for unreadable or invalid files
        raise VocalSeparatorError(f"{path} is not a readable ONNX model: {error}") from error
    expected = [4, params.dim_f, params.dim_t]
    shape = list(session.get_inputs()[0].shape)
    if len(shape) != 4 or any(isinstance(s, int) and s != e for s, e in zip(shape[1:], expected, strict=True)):
        raise VocalSeparatorError(
            f"{path.name} takes input {shape}, but Kim_Vocal_2's MDX-Net parameters need [batch, {expected[0]}, "
            f"{expected[1]}, {expected[2]}]; use the official vocal_separator/Kim_Vocal_2.onnx"
        )
    return VocalSeparator(session, params, path)
