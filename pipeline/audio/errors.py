"""Errors of the audio front-end that a user can act on (bad AUDIO input, wrong or unreadable encoder file)."""

from __future__ import annotations


class AudioInputError(ValueError):
    """The AUDIO input cannot be turned into LongCat audio features (empty, non-finite, bad shape or rate)."""


class AudioEncoderError(ValueError):
    """The audio-encoder file or folder is unreadable, of an unknown format, or the wrong kind for the version."""
