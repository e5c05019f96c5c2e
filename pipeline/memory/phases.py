"""The phases of one run, each with its own models on the device: the names the estimator and the callers share."""

from __future__ import annotations

TEXT_ENCODE = "text_encode"
AUDIO_ENCODE = "audio_encode"
PORTRAIT_ENCODE = "portrait_encode"
FIRST_SEGMENT = "first_segment"
CONTINUATION_SEGMENT = "continuation_segment"
DECODE = "decode"
PHASES = (TEXT_ENCODE, AUDIO_ENCODE, PORTRAIT_ENCODE, FIRST_SEGMENT, CONTINUATION_SEGMENT, DECODE)
SEGMENT_PHASES = (FIRST_SEGMENT, CONTINUATION_SEGMENT)
