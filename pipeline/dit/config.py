"""DiT hyper-parameters, read from an official `config.json` (diffusers `register_to_config` layout)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..versions import VERSIONS, version_for_audio_blocks

# Keys of the official config.json that are not model geometry: attention-backend flags (we pick the backend at run
# time), context-parallel split (single process here), diffusers bookkeeping and the tokenizer length.
IGNORED_KEYS = frozenset(
    {
        "_class_name",
        "_diffusers_version",
        "_name_or_path",
        "architectures",
        "model_max_length",
        "enable_flashattn3",
        "enable_flashattn2",
        "enable_xformers",
        "enable_bsa",
        "bsa_params",
        "cp_split_hw",
    }
)

# audio_block (the "layers" axis S of the audio features) identifies each model version (the version table).
AUDIO_BLOCKS_V10 = VERSIONS["v1.0"].audio_blocks
AUDIO_BLOCKS_V15 = VERSIONS["v1.5"].audio_blocks

# SwiGLU FFN width is rounded up to a multiple of 256 (LLaMA rule used by the reference FeedForwardSwiGLU).
FFN_MULTIPLE_OF = 256


@dataclass
class DiTConfig:
    """Geometry of LongCatVideoAvatarTransformer3DModel; defaults are the reference constructor's (Avatar v1.0)."""

    in_channels: int = 16
    out_channels: int = 16
    hidden_size: int = 4096
    depth: int = 48
    num_heads: int = 32
    caption_channels: int = 4096
    mlp_ratio: float = 4
    adaln_tembed_dim: int = 512
    frequency_embedding_size: int = 256
    patch_size: tuple[int, int, int] = (1, 2, 2)
    text_tokens_zero_pad: bool = False
    audio_window: int = 5
    audio_block: int = 12
    audio_channel: int = 768
    intermediate_dim: int = 512
    output_dim: int = 768
    context_tokens: int = 32
    vae_scale: int = 4
    audio_prenorm: bool = False
    class_range: int = 24
    class_interval: int = 4
    # Explicit FFN width (inferred from weights); None = the SwiGLU rule applied to hidden_size * mlp_ratio.
    ffn_hidden_size: int | None = None
    # Attention kernel: "sdpa" (default), or "sage" / "flash" when importable. Not part of the official config.
    attention_backend: str = "sdpa"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.patch_size = tuple(int(p) for p in self.patch_size)  # type: ignore[assignment]
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.patch_size[0] != 1:
            raise ValueError(f"temporal patch size must be 1, got patch_size {self.patch_size}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiTConfig:
        """Build from a config mapping; backend flags, `cp_split_hw` and diffusers bookkeeping keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in IGNORED_KEYS:
                continue
            if key in names:
                kwargs[key] = value
            else:
                extra[key] = value
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The geometry as a plain dict (the keys of the official config that we use)."""
        data = dataclasses.asdict(self)
        data.pop("extra")
        data["patch_size"] = list(self.patch_size)
        return data

    @property
    def head_dim(self) -> int:
        """Per-head width (128 for the real model)."""
        return self.hidden_size // self.num_heads

    @property
    def ffn_dim(self) -> int:
        """SwiGLU hidden width: int(2/3 * hidden * mlp_ratio) rounded up to 256 (11008 for the real model)."""
        if self.ffn_hidden_size is not None:
            return int(self.ffn_hidden_size)
        raw = int(2 * int(self.hidden_size * self.mlp_ratio) / 3)
        return FFN_MULTIPLE_OF * ((raw + FFN_MULTIPLE_OF - 1) // FFN_MULTIPLE_OF)

    @property
    def audio_window_vf(self) -> int:
        """Audio slots per later latent frame: 3 + 1 + 1 + 3 = audio_window + vae_scale - 1 (8)."""
        return self.audio_window + self.vae_scale - 1

    @property
    def version(self) -> str:
        """Model version from the audio geometry.

        Rule: audio_block == 12 (wav2vec2-base layers, 12 x 768 features) is "v1.0"; audio_block == 5 (five Whisper
        layer groups, 5 x 1280) is "v1.5". Any other audio_block is not an official model and raises ValueError.
        """
        version = version_for_audio_blocks(self.audio_block)
        if version is not None:
            return version
        raise ValueError(
            f"audio_block={self.audio_block} matches no LongCat-Avatar version "
            f"({AUDIO_BLOCKS_V10} = v1.0 wav2vec2 layers, {AUDIO_BLOCKS_V15} = v1.5 Whisper groups)"
        )
