"""Offline text-to-speech with the espeak-ng program: text in, a mono float waveform and its sample rate out.

espeak-ng is a system program (apt-get install espeak-ng, brew install espeak-ng, or the Windows installer); it is
found through $ESPEAK_NG, then PATH (`espeak-ng`, then the older `espeak`).
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .espeak import TIMEOUT_S, SpeechError, require_espeak
from .limits import MAX_TEXT_CHARS

MIN_RATE, MAX_RATE, DEFAULT_RATE = 80, 450, 150  # espeak-ng's accepted words-per-minute range; 150 is calm speech
MIN_PITCH, MAX_PITCH, DEFAULT_PITCH = 0, 99, 50  # espeak-ng's pitch scale; 50 is the voice's own pitch
PCM16_SCALE = 32768.0  # full scale of 16-bit PCM, espeak-ng's output format


@dataclass(frozen=True)
class Speech:
    """Synthesised speech: float32 samples [channels, n] in [-1, 1] and their rate."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.samples.shape[-1] / self.sample_rate


def list_voices() -> list[str]:
    """The language codes espeak-ng lists (en-us, de, cmn, ...); it also accepts prefixes and voice files."""
    result = subprocess.run([require_espeak(), "--voices"], capture_output=True, text=True, timeout=TIMEOUT_S)
    names: list[str] = []
    for line in result.stdout.splitlines()[1:]:  # the first line is the column header
        columns = line.split()
        if len(columns) >= 5:  # Pty Language Age/Gender VoiceName File [Other languages]
            names.append(columns[1])
    return sorted(set(names))


def check_voice(voice: str) -> str | None:
    """None when espeak-ng accepts `voice` (it also matches language prefixes and +variants), else a message."""
    if not voice.strip() or voice.strip().startswith("-") or any(c.isspace() for c in voice.strip()):
        return f"'{voice}' is not an espeak-ng voice name (e.g. en-us, de, fr-fr, cmn, en-us+f3)."
    with tempfile.TemporaryDirectory(prefix="longcat-tts-") as folder:
        command = [require_espeak(), "-v", voice.strip(), "-w", str(Path(folder) / "probe.wav"), "a"]
        result = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S)
    if result.returncode == 0:
        return None
    examples = ", ".join(v for v in ("en-us", "en-gb", "de", "fr-fr", "es", "cmn", "ja") if v in list_voices())
    return f"espeak-ng has no voice '{voice}'. Examples: {examples} (all: `espeak-ng --voices`); add +f3 etc. for a variant."


def _validate(text: str, voice: str, rate: int, pitch: int) -> str:
    """The text to speak, or SpeechError for empty text, a malformed voice and out-of-range settings."""
    cleaned = text.strip()
    if not voice.strip() or voice.strip().startswith("-") or any(c.isspace() for c in voice.strip()):
        raise SpeechError(f"'{voice}' is not an espeak-ng voice name (e.g. en-us, de, fr-fr, cmn, en-us+f3).")
    if not cleaned:
        raise SpeechError("The text to speak is empty.")
    if len(cleaned) > MAX_TEXT_CHARS:
        raise SpeechError(f"The text has {len(cleaned)} characters; the limit is {MAX_TEXT_CHARS}.")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise SpeechError(f"rate {rate} is outside {MIN_RATE}-{MAX_RATE} words per minute.")
    if not MIN_PITCH <= pitch <= MAX_PITCH:
        raise SpeechError(f"pitch {pitch} is outside {MIN_PITCH}-{MAX_PITCH}.")
    return cleaned


def read_wav(path: Path) -> Speech:
    """A 16-bit PCM WAV file (what espeak-ng writes) as float32 [channels, n]."""
    with wave.open(str(path), "rb") as handle:
        if handle.getsampwidth() != 2:  # espeak-ng always writes 16-bit samples
            raise SpeechError(f"{path}: expected 16-bit PCM, got {8 * handle.getsampwidth()}-bit")
        channels, rate = handle.getnchannels(), handle.getframerate()
        raw = handle.readframes(handle.getnframes())
    pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, channels).T
    return Speech(np.ascontiguousarray(pcm, dtype=np.float32) / PCM16_SCALE, rate)


def synthesize(text: str, voice: str = "en-us", rate: int = DEFAULT_RATE, pitch: int = DEFAULT_PITCH) -> Speech:
    """Speak `text` with espeak-ng (voice, words per minute, pitch) and return the waveform."""
    cleaned = _validate(text, voice, rate, pitch)
    voice = voice.strip()
    program = require_espeak()
    with tempfile.TemporaryDirectory(prefix="longcat-tts-") as folder:
        out = Path(folder) / "speech.wav"
        # -b 1: the text is UTF-8; --stdin: read it whole from stdin (never parsed as options); -z: no final pause.
        command = [program, "-b", "1", "--stdin", "-z", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(out)]
        result = subprocess.run(command, input=cleaned.encode("utf-8"), capture_output=True, timeout=TIMEOUT_S)
        stderr = result.stderr.decode("utf-8", "replace").strip()
        if result.returncode != 0 or not out.is_file():
            hint = check_voice(voice) if "voice" in stderr.lower() else None
            raise SpeechError(hint or f"espeak-ng failed (exit {result.returncode}): {stderr or 'no message'}")
        speech = read_wav(out)
    if speech.samples.shape[-1] == 0 or not np.any(speech.samples):
        raise SpeechError(f"espeak-ng produced no sound for the text {cleaned[:60]!r} with voice '{voice}'.")
    return speech
