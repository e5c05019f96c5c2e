"""Tiny randomly initialised models in the official `models/longcat/` layouts, for `doctor --selftest`.

They have the real architectures (LongCat-Avatar v1.5 DiT, Whisper encoder with 32 layers, Wan 2.1 VAE, umT5 with a
SentencePiece tokenizer) at toy widths, so every loader, encoder, the sampler, the decoder and the MP4 writer run for
real in seconds. Their video is noise by construction. Nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path
from typing import Any

from .comfy_launcher import PACK_ROOT
from .shared import model_catalogue as catalogue
from .shared import versions

WIDTH = 32  # the audio-encoder and text-encoder width the tiny DiT reads (the real ones are 1280 and 4096)
WHISPER_LAYERS = 32  # v1.5 averages Whisper layers 0-7, 8-15, 16-23, 24-31 and takes 32: the depth must be real
VAE_BASE_DIM = 4  # the real Wan 2.1 VAE has 96; 4 keeps its structure (widths 4-16) and decodes ~2x faster than 8
INT8_SHARD_BYTES = 2**30  # one shard: the tiny DiT is far below it
CORPUS = [
    "A person is talking to the camera with natural lip movements and a calm expression.",
    "Bright colours, overexposed, static, blurred details, subtitles, worst quality, low quality, ugly faces.",
    "The quick brown fox jumps over the lazy dog while the speaker smiles and nods.",
]


def _engine() -> Any:
    """The pack's engine package (`pipeline`), importable when the CLI runs from anywhere."""
    if str(PACK_ROOT) not in sys.path:
        sys.path.insert(0, str(PACK_ROOT))
    import pipeline.dit.config
    import pipeline.dit.model

    return pipeline


def _randomise(module: Any, seed: int) -> None:
    """Every parameter random, none a silent zero: matrices ~ N(0, 1/fan_in), norm scales ~ 1 + N(0, 0.02^2),
    other vectors ~ N(0, 0.01^2) (the statistics of the parity vectors' tiny models)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if param.dim() >= 2:
                param.copy_(noise / math.sqrt(param[0].numel()))
            elif "norm" in name:
                param.copy_(1 + 0.02 * noise)
            else:
                param.copy_(0.01 * noise)


def _tiny_dit(seed: int) -> tuple[Any, Any]:
    """A randomly initialised 2-block v1.5 DiT and its config."""
    engine = _engine()
    config = engine.dit.config.DiTConfig(
        hidden_size=64, depth=2, num_heads=4, caption_channels=WIDTH, adaln_tembed_dim=32, intermediate_dim=32,
        output_dim=48, context_tokens=4, audio_block=5, audio_channel=WIDTH, text_tokens_zero_pad=True,
    )  # fmt: skip
    model = engine.dit.model.LongCatAvatarDiT(config)
    _randomise(model, seed)
    return model, config


def build_dit(folder: Path, seed: int = 0) -> None:
    """A 2-block v1.5 DiT: config.json + diffusion_pytorch_model.safetensors, as base_model/ ships them."""
    from safetensors.torch import save_file

    model, config = _tiny_dit(seed)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "diffusion_pytorch_model.safetensors")
    )
    official = {k: v for k, v in config.to_dict().items() if k not in ("ffn_hidden_size", "attention_backend")}
    official["_class_name"] = "LongCatVideoAvatarTransformer3DModel"
    (folder / "config.json").write_text(json.dumps(official, indent=2))


def build_dit_int8(folder: Path, seed: int = 0) -> None:
    """The same tiny DiT quantised as base_model_int8/ ships it (int8 shards, index, config, quantization config)."""
    _engine()
    from pipeline.checkpoints.int8 import quantize_model
    from pipeline.checkpoints.save import save_int8_folder

    model, config = _tiny_dit(seed)
    quantize_model(model)
    save_int8_folder(model.state_dict(), config, folder, max_bytes=INT8_SHARD_BYTES)


def build_whisper(folder: Path, seed: int = 0) -> None:
    """A Whisper with 32 narrow encoder layers and the real 128-mel feature extractor, as whisper-large-v3/."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(
        d_model=WIDTH, encoder_layers=WHISPER_LAYERS, encoder_attention_heads=2, encoder_ffn_dim=64, decoder_layers=1,
        decoder_attention_heads=2, decoder_ffn_dim=64, num_mel_bins=128, max_source_positions=1500,
        max_target_positions=16, vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=3,
    )  # fmt: skip
    WhisperForConditionalGeneration(config).eval().save_pretrained(str(folder), safe_serialization=True)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(str(folder))


def build_vae(folder: Path, seed: int = 0) -> None:
    """A narrow Wan 2.1 VAE (diffusers AutoencoderKLWan), as LongCat-Video/vae/."""
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    AutoencoderKLWan(base_dim=VAE_BASE_DIM, z_dim=16).eval().save_pretrained(str(folder), safe_serialization=True)


def train_spiece(corpus: list[str], vocab_size: int) -> bytes:
    """A SentencePiece unigram model with umT5's special ids (pad 0, </s> 1, <s> 2, <unk> 3), trained on `corpus`."""
    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus * 20),  # repeated so the trainer sees enough sentences for its statistics
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        character_coverage=1.0,
        minloglevel=2,
    )
    return buffer.getvalue()


def build_umt5(root: Path, seed: int = 0) -> None:
    """A 2-layer umT5 encoder and a SentencePiece tokenizer trained here, as LongCat-Video/{text_encoder,tokenizer}/."""
    tokenizer = root / catalogue.TOKENIZER_FOLDER
    import torch
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer.mkdir(parents=True, exist_ok=True)
    (tokenizer / "spiece.model").write_bytes(train_spiece(CORPUS, vocab_size=64))  # as large as CORPUS allows
    torch.manual_seed(seed)
    config = UMT5Config(
        vocab_size=128, d_model=WIDTH, d_kv=8, d_ff=64, num_layers=2, num_heads=4, feed_forward_proj="gated-gelu",
        relative_attention_num_buckets=32, relative_attention_max_distance=128, tie_word_embeddings=False,
    )  # fmt: skip
    UMT5EncoderModel(config).eval().save_pretrained(str(root / catalogue.UMT5.path), safe_serialization=True)


def build_layout(models_dir: Path, with_int8: bool = False) -> Path:
    """Everything the v1.5 workflow loads, under models_dir/longcat/ (with_int8: also the int8 DiT, which the
    HTTP endpoint's workflows load); returns that folder."""
    c = catalogue
    longcat = models_dir / c.LONGCAT_FOLDER
    build_dit(longcat / c.DIT_V15_BF16.relpath)
    if with_int8:
        build_dit_int8(longcat / c.DIT_V15_INT8.relpath)
    build_whisper(longcat / c.WHISPER.relpath)
    scheduler = longcat / c.REPO_V15 / c.SCHEDULER_FOLDER
    scheduler.mkdir(parents=True, exist_ok=True)
    config = {
        "_class_name": "FlowMatchEulerDiscreteScheduler",
        "shift": versions.get_version("v1.5").default_shift,
        "use_dynamic_shifting": False,
    }
    (scheduler / c.SCHEDULER_CONFIG).write_text(json.dumps(config))
    build_vae(longcat / c.WAN_VAE.relpath)
    build_umt5(longcat / c.REPO_BASE)
    return longcat
