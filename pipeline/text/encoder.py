"""Prompt → umT5 embeddings (reference recipe) with a lazily loaded encoder and an on-disk cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .cache import EmbeddingCache, source_fingerprint
from .prompt import MAX_TEXT_TOKENS, clean_prompt
from .umt5_loader import LoadedTextEncoder, TextEncoderFormatError, load_text_encoder, resolve_folders


@dataclass
class TextEmbedding:
    """One prompt's encoder output [1, 1, L, D] (padded positions included) and its attention mask [1, L]."""

    embeds: torch.Tensor
    mask: torch.Tensor


@torch.no_grad()
def encode_prompts(
    encoder: LoadedTextEncoder, prompts: list[str], max_tokens: int = MAX_TEXT_TOKENS, device: str = "cpu"
) -> list[TextEmbedding]:
    """Clean, tokenize to exactly max_tokens (pad/truncate, </s> added) and take last_hidden_state per prompt."""
    tokens = encoder.tokenizer(
        [clean_prompt(p) for p in prompts],
        padding="max_length",
        max_length=max_tokens,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    ids, mask = tokens.input_ids.to(device), tokens.attention_mask.to(device)
    hidden = encoder.model(input_ids=ids, attention_mask=mask).last_hidden_state
    return [
        TextEmbedding(embeds=hidden[i : i + 1].unsqueeze(1).cpu(), mask=mask[i : i + 1].to(torch.int64).cpu())
        for i in range(len(prompts))
    ]


def _identity(source: Path, tokenizer_dir: Path | None) -> str:
    """Fingerprint of exactly the files the encoder is built from (not a whole LongCat-Video folder with its DiT)."""
    if source.is_dir():
        try:
            encoder_dir, found_tokenizer = resolve_folders(source)
        except TextEncoderFormatError:
            return source_fingerprint(source, tokenizer_dir)
        return source_fingerprint(encoder_dir, tokenizer_dir or found_tokenizer)
    return source_fingerprint(source, tokenizer_dir)


class CachedTextEncoder:
    """Encodes prompts, loading the (large) encoder only when a prompt is not in the cache yet."""

    def __init__(
        self,
        source: str | Path,
        cache_dir: str | Path | None,
        dtype: torch.dtype = torch.bfloat16,
        tokenizer_dir: str | Path | None = None,
        device: str = "cpu",
        loader: Callable[..., LoadedTextEncoder] = load_text_encoder,
        prepare: Callable[[LoadedTextEncoder, int], None] | None = None,
    ):
        """`prepare(encoder, tokens)` runs before every encoder call, e.g. a memory manager loading it onto `device`; without
        it the encoder is moved to `device` once when it loads."""
        self.source = Path(source)
        self.tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir else None
        self.dtype, self.device, self._loader = dtype, device, loader
        self.cache = EmbeddingCache(cache_dir) if cache_dir else None
        self.identity = _identity(self.source, self.tokenizer_dir) + f"|{dtype}"
        self.prepare = prepare
        self._encoder: LoadedTextEncoder | None = None
        self.load_count = 0

    def encoder(self) -> LoadedTextEncoder:
        """The loaded encoder (loaded on first use)."""
        if self._encoder is None:
            self._encoder = self._loader(self.source, dtype=self.dtype, tokenizer_dir=self.tokenizer_dir)
            if self.prepare is None:
                self._encoder.model.to(self.device)
            self.load_count += 1
        return self._encoder

    def encode(self, prompt: str, max_tokens: int = MAX_TEXT_TOKENS) -> TextEmbedding:
        """Embeddings of one prompt, from the cache when possible."""
        key = self.cache.key(self.identity, clean_prompt(prompt), max_tokens) if self.cache else ""
        hit = self.cache.load(key) if self.cache else None
        if hit is not None:
            return TextEmbedding(embeds=hit[0], mask=hit[1])
        encoder = self.encoder()
        if self.prepare is not None:
            self.prepare(encoder, max_tokens)
        result = encode_prompts(encoder, [prompt], max_tokens, self.device)[0]
        if self.cache:
            self.cache.store(key, result.embeds, result.mask)
        return result

    def unload(self) -> None:
        """Drop the encoder so its memory can be reclaimed (the cache stays)."""
        self._encoder = None
