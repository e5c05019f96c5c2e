"""How the DiT bounds its activation memory: FFN token chunks, speaker-map query chunks, where the KV cache lives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActivationOptions:
    """Chunk sizes and KV-cache placement of one DiT; the defaults compute everything at once, as the reference."""

    ffn_chunk_tokens: int | None = None  # None: the SwiGLU FFN runs over all tokens of the batch at once
    map_chunk_queries: int | None = None  # None: the multi-speaker reference map over all noisy queries at once
    kv_cache_on_host: bool = False  # continuation KV cache kept in host memory, moved to the device per block

    def __post_init__(self) -> None:
        for name in ("ffn_chunk_tokens", "map_chunk_queries"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive number of tokens or None (no chunking), got {value!r}")
