"""The espeak-ng wrapper (pipeline/tts.py): real speech, rate and pitch that do what they say, readable errors."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from pipeline import espeak, limits, tts

SENTENCE = "The quick brown fox jumps over the lazy dog."


def _f0(speech: tts.Speech) -> float:
    """Median fundamental frequency (Hz) over voiced 40 ms frames, by autocorrelation in the 60-400 Hz range."""
    x, rate = speech.samples[0], speech.sample_rate
    size = int(0.04 * rate)
    lags = np.arange(rate // 400, rate // 60)
    estimates = []
    for start in range(0, len(x) - size, size):
        frame = x[start : start + size] - x[start : start + size].mean()
        if np.sqrt(np.mean(frame**2)) < 0.05:  # unvoiced or silent
            continue
        corr = np.array([np.dot(frame[:-lag], frame[lag:]) for lag in lags])
        estimates.append(rate / lags[int(np.argmax(corr))])
    return float(np.median(estimates))


def test_speech_is_real_audio() -> None:
    speech = tts.synthesize(SENTENCE)
    assert speech.samples.dtype == np.float32 and speech.samples.shape[0] == 1
    assert speech.sample_rate == 22050  # espeak-ng's output rate
    assert 1.5 < speech.duration_s < 5.0  # nine words at 150 words per minute
    assert 0.3 < np.abs(speech.samples).max() <= 1.0
    rms = np.sqrt(np.mean(speech.samples**2))
    assert rms > 0.02
    assert np.array_equal(speech.samples, tts.synthesize(SENTENCE).samples)  # deterministic


def test_rate_changes_the_duration() -> None:
    slow = tts.synthesize(SENTENCE, rate=100).duration_s
    fast = tts.synthesize(SENTENCE, rate=200).duration_s
    assert 1.5 < slow / fast < 2.5  # twice the words per minute: about half the time (pauses do not scale)


def test_pitch_changes_the_fundamental() -> None:
    low, high = _f0(tts.synthesize(SENTENCE, pitch=10)), _f0(tts.synthesize(SENTENCE, pitch=90))
    assert 60 < low < high < 400
    assert high / low > 1.3


def test_other_languages_and_unicode() -> None:
    german = tts.synthesize("Grüß Gott, wie geht es Ihnen?", voice="de")
    mandarin = tts.synthesize("你好，我是一个会说话的头像。", voice="cmn")
    assert german.duration_s > 1.0 and mandarin.duration_s > 1.0
    assert tts.check_voice("en-us+f3") is None and tts.check_voice("de") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "   "}, "empty"),
        ({"text": "x" * (limits.MAX_TEXT_CHARS + 1)}, "limit"),
        ({"text": "hi", "rate": 10}, "rate 10 is outside 80-450"),
        ({"text": "hi", "pitch": 120}, "pitch 120 is outside 0-99"),
        ({"text": "hi", "voice": "qqq"}, "espeak-ng has no voice 'qqq'"),
        ({"text": "hi", "voice": "-w /tmp/x"}, "not an espeak-ng voice name"),
    ],
)
def test_refusals(kwargs: dict, message: str) -> None:
    with pytest.raises(tts.SpeechError, match=message):
        tts.synthesize(**kwargs)


def test_missing_program_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESPEAK_NG", "/nonexistent/espeak-ng")
    assert espeak.find_espeak() is None
    with pytest.raises(tts.SpeechError, match="apt-get install espeak-ng"):
        tts.synthesize("hello")


def test_text_is_never_read_as_options() -> None:
    speech = tts.synthesize("--help -v xx")
    assert speech.duration_s > 0.5


def test_read_wav_stereo(tmp_path: Path) -> None:
    pcm = np.array([[0, 16384], [-32768, 32767]], dtype="<i2")  # two frames, two channels
    path = tmp_path / "s.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(pcm.tobytes())
    speech = tts.read_wav(path)
    assert speech.sample_rate == 8000
    np.testing.assert_array_equal(speech.samples, np.array([[0.0, -1.0], [0.5, 32767 / 32768]], dtype=np.float32))
