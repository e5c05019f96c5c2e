"""The three LongCat repositories in miniature, for the fake hub: the real layouts with tiny random files.

The layouts follow what the hub repositories ship (LongCat-Video's README and demo scripts), including what a
download must never fetch: LongCat-Video's base `dit/` and `lora/` folders, the repositories' READMEs and assets, the
v1.5 bf16 DiT when int8 is chosen, and so on.
"""

from __future__ import annotations

import json
import random

from support.fake_hub import FakeRepo

ORG = "meituan-longcat"
BASE, V10, V15 = f"{ORG}/LongCat-Video", f"{ORG}/LongCat-Video-Avatar", f"{ORG}/LongCat-Video-Avatar-1.5"
WEIGHT_BYTES = 96 * 1024  # tiny weights: instant to serve and hash
BIG_SHARD = "base_model_int8/quantized_model-00001-of-00002.safetensors"  # in V15
BIG_SHARD_BYTES = 12 * 1024**2  # beyond huggingface_hub's 10 MiB download chunk: a cut transfer has one to resume from
CONFIG = json.dumps({"_class_name": "tiny"}).encode()

# repository -> (small files, LFS files)
LAYOUT = {
    BASE: (
        ["README.md", "dit/config.json", "vae/config.json", "text_encoder/config.json",
         "text_encoder/model.safetensors.index.json", "tokenizer/tokenizer_config.json",
         "tokenizer/special_tokens_map.json", "scheduler/scheduler_config.json"],
        ["dit/diffusion_pytorch_model.safetensors", "lora/refinement_lora.safetensors", "assets/demo.mp4",
         "vae/diffusion_pytorch_model.safetensors", "text_encoder/model-00001-of-00002.safetensors",
         "text_encoder/model-00002-of-00002.safetensors", "tokenizer/spiece.model"],
    ),
    V15: (
        ["README.md", "base_model/config.json", "base_model/diffusion_pytorch_model.safetensors.index.json",
         "base_model_int8/config.json", "base_model_int8/quantization_config.json",
         "base_model_int8/quantized_model.safetensors.index.json", "whisper-large-v3/config.json",
         "whisper-large-v3/preprocessor_config.json", "scheduler/scheduler_config.json"],
        ["base_model/diffusion_pytorch_model-00001-of-00002.safetensors",
         "base_model/diffusion_pytorch_model-00002-of-00002.safetensors",
         "base_model_int8/quantized_model-00001-of-00002.safetensors",
         "base_model_int8/quantized_model-00002-of-00002.safetensors", "lora/dmd_lora.safetensors",
         "whisper-large-v3/model.safetensors", "vocal_separator/Kim_Vocal_2.onnx"],
    ),
    V10: (
        ["README.md", "avatar_single/config.json", "avatar_multi/config.json", "chinese-wav2vec2-base/config.json",
         "chinese-wav2vec2-base/preprocessor_config.json"],
        ["avatar_single/diffusion_pytorch_model.safetensors", "avatar_multi/diffusion_pytorch_model.safetensors",
         "chinese-wav2vec2-base/pytorch_model.bin", "vocal_separator/Kim_Vocal_2.onnx"],
    ),
}  # fmt: skip

# What each choice must bring, per repository (every other file must stay on the hub).
V15_INT8_WITH_LORA = {
    BASE: {"vae/config.json", "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json",
           "text_encoder/model.safetensors.index.json", "text_encoder/model-00001-of-00002.safetensors",
           "text_encoder/model-00002-of-00002.safetensors", "tokenizer/tokenizer_config.json",
           "tokenizer/special_tokens_map.json", "tokenizer/spiece.model"},
    V15: {"base_model_int8/config.json", "base_model_int8/quantization_config.json",
          "base_model_int8/quantized_model.safetensors.index.json",
          "base_model_int8/quantized_model-00001-of-00002.safetensors",
          "base_model_int8/quantized_model-00002-of-00002.safetensors", "lora/dmd_lora.safetensors",
          "whisper-large-v3/config.json", "whisper-large-v3/preprocessor_config.json",
          "whisper-large-v3/model.safetensors", "scheduler/scheduler_config.json",
          "vocal_separator/Kim_Vocal_2.onnx"},
}  # fmt: skip
V10_DEFAULT = {
    BASE: V15_INT8_WITH_LORA[BASE] | {"scheduler/scheduler_config.json"},
    V10: {"avatar_single/config.json", "avatar_single/diffusion_pytorch_model.safetensors",
          "chinese-wav2vec2-base/config.json", "chinese-wav2vec2-base/preprocessor_config.json",
          "chinese-wav2vec2-base/pytorch_model.bin", "vocal_separator/Kim_Vocal_2.onnx"},
}  # fmt: skip


def longcat_repos(seed: int = 0) -> list[FakeRepo]:
    """The three repositories with random bytes as weights and a tiny JSON as every small file."""
    rng = random.Random(seed)
    repos = []
    for repo_id, (small, lfs) in LAYOUT.items():
        files = dict.fromkeys(small, CONFIG)
        files |= {path: rng.randbytes(WEIGHT_BYTES + rng.randrange(1024)) for path in lfs}
        if BIG_SHARD in files:
            files[BIG_SHARD] = rng.randbytes(BIG_SHARD_BYTES)
        repos.append(FakeRepo(repo_id, files, set(lfs)))
    return repos
