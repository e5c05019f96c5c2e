"""Prompt cleaning, token budget and default negative prompt as the reference has them (LongCat-Video's
`prompt_clean` and `_get_t5_prompt_embeds` in longcat_video/pipeline_longcat_video_avatar.py, and the demo scripts).
"""

from __future__ import annotations

import html
import re

import ftfy

MAX_TEXT_TOKENS = 512  # the DiT's model_max_length: prompts are padded / truncated to 512 umT5 tokens

# The single-speaker demo's negative prompt (the multi-speaker demo only lower-cases "Bright").
DEFAULT_NEGATIVE_PROMPT = (
    "Close-up, Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, "
    "static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards"
)

_WHITESPACE = re.compile(r"\s+")


def clean_prompt(text: str) -> str:
    """ftfy fix, HTML-unescape twice, strip, and collapse whitespace runs to one space (the reference's cleaning)."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _WHITESPACE.sub(" ", text).strip()
