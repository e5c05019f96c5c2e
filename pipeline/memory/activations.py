"""Activation peaks of one DiT forward from its token counts, and the chunk sizes that fit a byte budget.

Counted in tensors of the block's shapes (pipeline/dit/block.py, attention.py, layers.py, fp32.py): a "hidden"
tensor is [batch, query tokens, hidden] in the activation dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..dit.config import DiTConfig
from ..dit.multispeaker import MAP_HEAD_GROUPS
from .options import ActivationOptions

FP32_BYTES = 4
# The residual stream x and the modulated block input live through every stage of a block.
HIDDEN_LIVE = 2
# Self-attention: the fused qkv output (3 hidden widths, q/k/v are views of it), the RMS-normed and RoPE'd q, the
# attention output; the keys and values it attends to are counted over the key tokens (k RoPE'd, v).
QKV_LIVE, QUERY_LIVE, OUT_LIVE, KEYS_LIVE = 3, 1, 1, 2
# gated_add / modulate_fp32: the update in the activation dtype plus three float32 copies ([tokens, hidden] each).
FP32_ISLAND_COPIES = 3
# SwiGLU: silu(w1 x), w3 x and their product are [tokens, ffn] at once; the block output buffer is one more hidden.
FFN_INNER_LIVE = 3
# Speaker map: the scores and their softmax, [heads per group, query rows, reference tokens] each.
MAP_SCORE_COPIES = 2


@dataclass(frozen=True)
class DiTCall:
    """One DiT forward: batch, query tokens, tokens held by the KV cache, and the speaker-map geometry."""

    batch: int
    query_tokens: int
    cached_tokens: int = 0  # clean tokens coming from the KV cache (continuation segments)
    map_queries: int = 0  # noisy query tokens of the multi-speaker map (0: single speaker, no map)
    frame_tokens: int = 0  # tokens of the reference frame (the map's keys)
    text_tokens: int = 0
    act_bytes: int = 2  # bf16 / fp16 activations

    def hidden(self, cfg: DiTConfig, tokens: int | None = None) -> int:
        """Bytes of one [batch, tokens, hidden] tensor (default: the query tokens)."""
        count = self.query_tokens if tokens is None else tokens
        return self.batch * count * cfg.hidden_size * self.act_bytes


def attention_bytes(cfg: DiTConfig, call: DiTCall) -> int:
    """Self-attention stage with a fused (flash-class / SDPA) kernel: no score matrix is materialised."""
    hidden = call.hidden(cfg)
    keys = call.hidden(cfg, call.query_tokens + call.cached_tokens)
    text = 3 * call.batch * call.text_tokens * cfg.hidden_size * call.act_bytes  # projected caption, its k and v
    return (HIDDEN_LIVE + QKV_LIVE + QUERY_LIVE + OUT_LIVE) * hidden + KEYS_LIVE * keys + text


def fp32_island_bytes(cfg: DiTConfig, call: DiTCall) -> int:
    """The float32 residual update (gated_add): the stream, the update and its float32 copies."""
    hidden = call.hidden(cfg)
    return HIDDEN_LIVE * hidden + FP32_ISLAND_COPIES * hidden * FP32_BYTES // call.act_bytes


def ffn_bytes(cfg: DiTConfig, call: DiTCall, chunk: int | None) -> int:
    """The SwiGLU stage with `chunk` tokens at a time (None: all batch x query tokens)."""
    tokens = call.batch * call.query_tokens
    rows = tokens if chunk is None else min(chunk, tokens)
    return (HIDDEN_LIVE + 1) * call.hidden(cfg) + FFN_INNER_LIVE * rows * cfg.ffn_dim * call.act_bytes


def map_bytes(cfg: DiTConfig, call: DiTCall, chunk: int | None) -> int:
    """The multi-speaker reference map with `chunk` query rows at a time (0 when there is no map)."""
    if not call.map_queries:
        return 0
    rows = call.map_queries if chunk is None else min(chunk, call.map_queries)
    heads = cfg.num_heads // MAP_HEAD_GROUPS
    scores = MAP_SCORE_COPIES * heads * rows * call.frame_tokens * call.act_bytes
    # q, k and the attention output are still alive when the map is computed.
    keys = call.hidden(cfg, call.query_tokens + call.cached_tokens)
    return (HIDDEN_LIVE + QUERY_LIVE + OUT_LIVE) * call.hidden(cfg) + keys + scores


def kv_cache_bytes(cfg: DiTConfig, cached_tokens: int, act_bytes: int) -> int:
    """The continuation KV cache of all blocks: pre-RoPE k and v of the clean tokens (batch 1)."""
    return cfg.depth * 2 * cached_tokens * cfg.hidden_size * act_bytes


def forward_bytes(cfg: DiTConfig, call: DiTCall, options: ActivationOptions, collects_kv: bool = False) -> int:
    """Peak activation bytes of one forward: the largest stage plus a KV cache held on the device."""
    stages = (
        attention_bytes(cfg, call),
        fp32_island_bytes(cfg, call),
        ffn_bytes(cfg, call, options.ffn_chunk_tokens),
        map_bytes(cfg, call, options.map_chunk_queries),
    )
    cache_tokens = call.query_tokens if collects_kv else call.cached_tokens
    cache = 0 if options.kv_cache_on_host else kv_cache_bytes(cfg, cache_tokens, call.act_bytes)
    return max(stages) + cache


def floor_bytes(cfg: DiTConfig, call: DiTCall) -> int:
    """What chunking cannot lower: the attention stage and the float32 residual update."""
    return max(attention_bytes(cfg, call), fp32_island_bytes(cfg, call))


def _largest_chunk(fixed: int, per_row: int, allowed: int, rows: int) -> int | None:
    """Most rows with fixed + rows x per_row <= allowed (None: all rows fit); at least one row."""
    fit = (allowed - fixed) // per_row
    return None if fit >= rows else max(1, fit)


def _smaller(a: int | None, b: int | None) -> int | None:
    """The tighter of two chunk sizes (None: unchunked)."""
    return b if a is None else a if b is None else min(a, b)


def options_for_budget(cfg: DiTConfig, calls: list[tuple[DiTCall, bool]], budget: int) -> ActivationOptions:
    """Chunk sizes and KV placement so every call (call, collects_kv) fits `budget` bytes of activations.

    Chunks are never smaller than needed to bring their stage down to the largest unchunkable floor of the calls
    (below it the peak would not move); the KV cache goes to the host only when the chunked forwards still exceed
    the budget.
    """
    allowed = max(budget, *(floor_bytes(cfg, call) for call, _ in calls))
    ffn_chunk: int | None = None
    map_chunk: int | None = None
    for call, _ in calls:
        per_token = FFN_INNER_LIVE * cfg.ffn_dim * call.act_bytes
        fixed = ffn_bytes(cfg, call, 0)  # the FFN stage without any token rows
        ffn_chunk = _smaller(ffn_chunk, _largest_chunk(fixed, per_token, allowed, call.batch * call.query_tokens))
        if call.map_queries:
            per_row = MAP_SCORE_COPIES * (cfg.num_heads // MAP_HEAD_GROUPS) * call.frame_tokens * call.act_bytes
            fixed = map_bytes(cfg, call, 0)  # the map stage without any score rows
            map_chunk = _smaller(map_chunk, _largest_chunk(fixed, per_row, allowed, call.map_queries))
    options = ActivationOptions(ffn_chunk, map_chunk)
    if any(forward_bytes(cfg, call, options, collects) > budget for call, collects in calls):
        options = replace(options, kv_cache_on_host=True)
    return options
