"""The pack's own payload types (LONGCAT_*) and the shared category names."""

from __future__ import annotations

from comfy_api.latest import io

CATEGORY = "LongCat Avatar"
LOADER_CATEGORY = "LongCat Avatar/loaders"

# Objects that are not core ComfyUI objects travel between our nodes under their own type names, so the frontend
# only lets them connect where they make sense.
AvatarModel = io.Custom("LONGCAT_MODEL")  # the loaded DiT (+ LoRA / int8 information)
AvatarVAE = io.Custom("LONGCAT_VAE")  # the Wan 2.1 VAE wrapper of the engine
AudioEncoderModel = io.Custom("LONGCAT_AUDIO_ENCODER")  # wav2vec2 (v1.0) or Whisper (v1.5)
TextEncoderModel = io.Custom("LONGCAT_TEXT_ENCODER")  # umT5 encoder + tokenizer (+ embedding cache)
AudioEmbeds = io.Custom("LONGCAT_AUDIO_EMBEDS")  # per-frame audio features of one or more speakers
PortraitLatent = io.Custom("LONGCAT_PORTRAIT")  # the encoded portrait and the generation size
TextEmbeds = io.Custom("LONGCAT_TEXT_EMBEDS")  # prompt and negative prompt embeddings with masks
AvatarVideo = io.Custom("LONGCAT_VIDEO")  # the sampler's result: frames or latents of the whole video
