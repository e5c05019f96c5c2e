"""Text Encode: prompt and negative prompt → umT5 embeddings, from our text encoder or ComfyUI's core CLIP (umT5)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from comfy_api.latest import io

from ..pipeline.text.encoder import TextEmbedding
from ..pipeline.text.prompt import DEFAULT_NEGATIVE_PROMPT, MAX_TEXT_TOKENS, clean_prompt
from .payloads import NamedModel
from .types import CATEGORY, TextEmbeds, TextEncoderModel

log = logging.getLogger(__name__)

DEFAULT_PROMPT = (
    "A person is talking to the camera with natural lip movements that match the speech, lively facial expressions, "
    "subtle head movements and blinking, realistic lighting, sharp details."
)
UMT5_KEY = "umt5xxl"  # the token-stream name ComfyUI's Wan text encoder (CLIPLoader type "wan") uses
PAD_ID, EOS_ID = 0, 1  # umT5 special ids: <pad> 0, </s> 1


@dataclass
class TextEmbedsPayload:
    """LONGCAT_TEXT_EMBEDS: positive and negative prompt embeddings [1, 1, 512, D] with their masks [1, 512]."""

    positive: TextEmbedding
    negative: TextEmbedding
    prompt: str
    negative_prompt: str


def _fit_tokens(stream: list[tuple], max_tokens: int) -> tuple[list[tuple], int]:
    """Truncate a ComfyUI umT5 token list as the reference does (keep </s>) and pad it to max_tokens; return n real."""
    real = next((i for i, token in enumerate(stream) if token[0] == PAD_ID), len(stream))
    template = stream[0]
    tokens = list(stream[:real])
    if real > max_tokens:  # reference: truncation=True keeps the first max_tokens - 1 tokens and </s>
        tokens = tokens[: max_tokens - 1] + [(EOS_ID, *template[1:])]
    pad = (PAD_ID, *template[1:])
    return tokens + [pad] * (max_tokens - len(tokens)), len(tokens)


@torch.no_grad()
def embed_with_clip(clip: Any, prompt: str, max_tokens: int = MAX_TEXT_TOKENS) -> TextEmbedding:
    """One prompt through ComfyUI's core CLIP holding umT5: same tokens and mask as the reference (512, padded)."""
    tokens = clip.tokenize(clean_prompt(prompt))
    if UMT5_KEY not in tokens:
        raise ValueError(
            "the connected CLIP is not a umT5 text encoder (found token streams "
            f"{sorted(tokens)}); load umt5_xxl with CLIPLoader type 'wan', or use LongCat Avatar Text Encoder Loader"
        )
    stream = [token for chunk in tokens[UMT5_KEY] for token in chunk]
    fitted, real = _fit_tokens(stream, max_tokens)
    tokens = {UMT5_KEY: [fitted]}
    cond = clip.encode_from_tokens(tokens, return_dict=True)["cond"][:, :max_tokens]
    mask = torch.zeros(1, max_tokens, dtype=torch.int64)
    mask[0, :real] = 1
    return TextEmbedding(embeds=cond.unsqueeze(1).cpu(), mask=mask)


class TextEncode(io.ComfyNode):
    """Encodes the prompt and the negative prompt for the sampler."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """Encoder (ours or core CLIP), prompt and negative prompt."""
        return io.Schema(
            node_id="LongCatAvatarTextEncode",
            display_name="LongCat Avatar Text Encode",
            category=CATEGORY,
            description="umT5 embeddings of the prompt and the negative prompt (512 tokens, cleaned and padded as "
            "the reference does). Connect either a LongCat text encoder or a core CLIP holding umT5, not both.",
            inputs=[
                TextEncoderModel.Input(
                    "text_encoder", optional=True, tooltip="From LongCat Avatar Text Encoder Loader (cached)."
                ),
                io.Clip.Input(
                    "clip",
                    optional=True,
                    tooltip="Alternatively ComfyUI's CLIP with umT5-XXL (CLIPLoader, type 'wan'): reuse your Wan "
                    "text-encoder file.",
                ),
                io.String.Input(
                    "prompt",
                    multiline=True,
                    default=DEFAULT_PROMPT,
                    tooltip="What the video shows: the person, expression, setting. The speech itself comes from the "
                    "audio.",
                ),
                io.String.Input(
                    "negative_prompt",
                    multiline=True,
                    default=DEFAULT_NEGATIVE_PROMPT,
                    tooltip="What to avoid (used by text guidance; ignored in distilled mode). Default: the "
                    "reference demos' negative prompt.",
                ),
            ],
            outputs=[TextEmbeds.Output(display_name="text_embeds", tooltip="Prompt embeddings for the sampler.")],
        )

    @classmethod
    def execute(
        cls, prompt: str, negative_prompt: str, text_encoder: NamedModel | None = None, clip: Any = None
    ) -> io.NodeOutput:
        """Encode both prompts (from the on-disk cache when possible) and unload the big encoder."""
        if text_encoder is None and clip is None:
            raise ValueError(
                "LongCat Avatar Text Encode: connect a text_encoder (LongCat Avatar Text Encoder Loader) or a clip."
            )
        if text_encoder is not None and clip is not None:  # they may hold different umT5 weights: never guess
            raise ValueError(
                "LongCat Avatar Text Encode: both a text_encoder and a clip are connected; connect only one of them "
                "(disconnect the one whose umT5 you do not want to use)."
            )
        if text_encoder is not None:
            encoder = text_encoder.model
            try:
                positive, negative = encoder.encode(prompt), encoder.encode(negative_prompt)
            finally:
                encoder.unload()  # the embeddings are cached on disk; free the encoder's memory for the DiT
        else:
            positive, negative = embed_with_clip(clip, prompt), embed_with_clip(clip, negative_prompt)
        log.info("LongCat Avatar: prompt of %d tokens encoded", int(positive.mask.sum()))
        return io.NodeOutput(TextEmbedsPayload(positive, negative, prompt, negative_prompt))
