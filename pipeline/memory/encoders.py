"""Parameter counts and activation peaks of the umT5 text encoder and the Whisper audio encoder, from their configs.

Configs are the published `config.json` mappings (transformers UMT5Config / WhisperConfig keys).
"""

from __future__ import annotations

import math
from typing import Any

FP32_BYTES = 4  # umT5 adds its relative position bias to the attention scores in float32


def umt5_encoder_params(cfg: dict[str, Any]) -> int:
    """Parameters of transformers' UMT5EncoderModel: embedding, per-layer attention, relative bias, gated FFN."""
    d, inner = cfg["d_model"], cfg["num_heads"] * cfg["d_kv"]
    attention = 4 * d * inner + cfg["relative_attention_num_buckets"] * cfg["num_heads"]  # q, k, v, o; no biases
    ffn = 3 * d * cfg["d_ff"]  # wi_0, wi_1 (gated GELU) and wo
    layer = attention + ffn + 2 * d  # two RMS layer norms
    return cfg["vocab_size"] * d + cfg["num_layers"] * layer + d  # + the final layer norm


def whisper_encoder_params(cfg: dict[str, Any]) -> int:
    """Parameters of transformers' WhisperEncoder: two convolutions, positions, layers, final LayerNorm."""
    d, ffn = cfg["d_model"], cfg["encoder_ffn_dim"]
    kernel = 3  # both Whisper input convolutions have kernel size 3
    convs = (cfg["num_mel_bins"] * d * kernel + d) + (d * d * kernel + d)
    attention = 4 * d * d + 3 * d  # q, k, v, out_proj; k has no bias
    layer = attention + (d * ffn + ffn) + (ffn * d + d) + 2 * (2 * d)  # fc1, fc2, two LayerNorms
    return convs + cfg["max_source_positions"] * d + cfg["encoder_layers"] * layer + 2 * d


def umt5_encode_bytes(cfg: dict[str, Any], tokens: int, act_bytes: int) -> int:
    """Peak activations of one prompt through umT5: hidden states, eager attention scores with bias, gated FFN."""
    d, heads = cfg["d_model"], cfg["num_heads"]
    hidden = 3 * tokens * d * act_bytes  # residual stream, normed input and one projection output
    qkv = 3 * tokens * heads * cfg["d_kv"] * act_bytes
    scores = 3 * heads * tokens * tokens * FP32_BYTES  # position bias, scores + bias, softmax (float32)
    ffn = 3 * tokens * cfg["d_ff"] * act_bytes  # gelu(wi_0 x), wi_1 x and their product
    return hidden + max(qkv + scores, ffn)


def whisper_encode_bytes(cfg: dict[str, Any], act_bytes: int) -> int:
    """Peak activations of one 30 s window through Whisper: every layer's hidden states are kept and stacked."""
    positions, d = cfg["max_source_positions"], cfg["d_model"]
    states = cfg["encoder_layers"] + 1  # the embeddings and each layer's output are collected
    kept = 2 * states * positions * d * act_bytes  # the collected list and its stacked copy
    mel_frames = 2 * positions  # the second convolution has stride 2
    convs = (cfg["num_mel_bins"] + 2 * d) * mel_frames * act_bytes
    layer = positions * (4 * d + 2 * cfg["encoder_ffn_dim"]) * act_bytes  # q, k, v, out; fc1 and its activation
    return kept + max(convs, layer)


def wav2vec2_encode_bytes(cfg: dict[str, Any], samples: int, act_bytes: int) -> int:
    """Peak activations of a whole clip through wav2vec2 (transformers Wav2Vec2Model, eager attention).

    The convolutional feature encoder's first layer output and its GroupNorm copy, or the transformer: every layer's
    hidden states kept and stacked, plus one layer's attention scores and softmax or its feed-forward.
    """
    strides = cfg["conv_stride"]
    conv = 2 * cfg["conv_dim"][0] * (samples // strides[0]) * act_bytes
    tokens = samples // math.prod(strides)  # one feature step per product of the strides (20 ms at 16 kHz)
    d, states = cfg["hidden_size"], cfg["num_hidden_layers"] + 1
    kept = 2 * states * tokens * d * act_bytes  # the collected list and its stacked copy
    scores = 2 * cfg["num_attention_heads"] * tokens * tokens * act_bytes
    layer = max(scores + 4 * tokens * d * act_bytes, tokens * cfg["intermediate_size"] * act_bytes)
    return kept + max(conv, layer)
