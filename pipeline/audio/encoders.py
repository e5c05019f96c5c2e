"""Audio encoders as LongCat uses them: chinese-wav2vec2-base (v1.0) and whisper-large-v3's encoder (v1.5).

`load_audio_encoder` accepts the official folders (`chinese-wav2vec2-base/` with a `pytorch_model.bin` whose keys
carry a `wav2vec2.` prefix and legacy `weight_g/weight_v` weight-norm names; `whisper-large-v3/` with
`model.safetensors` or the sharded fp32 index) and single `.safetensors` files as ComfyUI keeps them in
`models/audio_encoders/`. The kind is told from tensor names, never from the file name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..versions import ENCODER_KIND_TO_VERSION, VERSIONS
from .encoder_config import infer_config
from .encoder_files import WAV2VEC2, WHISPER, detect_encoder_kind, find_weight_file, load_encoder_state, strip_prefix
from .errors import AudioEncoderError
from .types import version_spec

if TYPE_CHECKING:  # transformers' model classes are imported when an encoder is built: a ComfyUI start stays lighter
    from transformers import PretrainedConfig

# Tensors a checkpoint may omit because inference never reads them (SpecAugment's mask embedding).
UNUSED_IN_INFERENCE = ("masked_spec_embed",)
# The reference hard-codes these depths: v1.0 stacks 12 wav2vec2 layer outputs (the DiT's audio_block = 12), v1.5
# groups Whisper's 33 hidden states as 0:8, 8:16, 16:24, 24:32, 32 (whisper-large-v3 has 32 encoder layers).
REQUIRED_LAYERS = {WAV2VEC2: VERSIONS["v1.0"].audio_blocks, WHISPER: 32}
WEIGHT_NORM_RENAMES = {  # legacy torch.nn.utils.weight_norm names -> parametrizations.weight_norm names
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
}


@dataclass
class AudioEncoder:
    """A loaded audio encoder: the transformers module, its feature extractor, and what it is."""

    kind: str  # "wav2vec2" (Wav2Vec2Model) or "whisper" (WhisperEncoder)
    model: torch.nn.Module
    feature_extractor: Any  # Wav2Vec2FeatureExtractor or WhisperFeatureExtractor
    source: str = ""

    @property
    def version(self) -> str:
        """The LongCat version this encoder serves ("v1.0" for wav2vec2, "v1.5" for Whisper)."""
        return ENCODER_KIND_TO_VERSION[self.kind]

    @property
    def device(self) -> torch.device:
        """Device of the encoder weights."""
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the encoder weights."""
        return next(self.model.parameters()).dtype

    @property
    def hidden_size(self) -> int:
        """Width A of one feature vector (768 for wav2vec2-base, 1280 for whisper-large-v3)."""
        config = self.model.config
        return int(config.hidden_size if self.kind == WAV2VEC2 else config.d_model)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> AudioEncoder:
        """Move/cast the encoder weights in place and return self."""
        self.model.to(device=device, dtype=dtype)
        return self


def _sibling_config(folder: Path, kind: str) -> PretrainedConfig | None:
    """The transformers config.json next to the weights, if it describes a model of `kind`."""
    file = folder / "config.json"
    if not file.is_file():
        return None
    try:
        raw = json.loads(file.read_text())
    except ValueError as exc:
        raise AudioEncoderError(f"unreadable {file}: {exc}") from exc
    if raw.get("model_type") != kind:
        return None
    from transformers import Wav2Vec2Config, WhisperConfig

    config_class = Wav2Vec2Config if kind == WAV2VEC2 else WhisperConfig
    return config_class.from_pretrained(str(folder), local_files_only=True)


def _rename_weight_norm(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Map legacy weight_g/weight_v names to the module's parametrization names (or back) when needed."""
    renamed = {}
    for name, tensor in state.items():
        if name not in expected:
            for old, new in WEIGHT_NORM_RENAMES.items():
                if name.endswith("." + old) and name[: -len(old)] + new in expected:
                    name = name[: -len(old)] + new
                elif name.endswith("." + new) and name[: -len(new)] + old in expected:
                    name = name[: -len(new)] + old
        renamed[name] = tensor
    return renamed


def _build_module(kind: str, config: PretrainedConfig, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Build the transformers module on the meta device and assign the checkpoint tensors to it."""
    from transformers import Wav2Vec2Model
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    # The reference runs wav2vec2 with eager attention (its wrapper forces it); Whisper used transformers' default.
    config._attn_implementation = "eager" if kind == WAV2VEC2 else "sdpa"
    with torch.device("meta"):
        model = Wav2Vec2Model(config) if kind == WAV2VEC2 else WhisperEncoder(config)
    expected = model.state_dict()
    state = _rename_weight_norm(state, set(expected))
    for name in UNUSED_IN_INFERENCE:
        if name in expected and name not in state:
            state[name] = torch.zeros(expected[name].shape)
    missing = sorted(set(expected) - set(state))
    if missing:
        raise AudioEncoderError(f"the {kind} checkpoint lacks {len(missing)} tensors, e.g. {missing[:4]}")
    bad = [n for n in expected if tuple(state[n].shape) != tuple(expected[n].shape)]
    if bad:
        n = bad[0]
        raise AudioEncoderError(
            f"{kind} tensor {n} has shape {tuple(state[n].shape)}, expected {tuple(expected[n].shape)}"
        )
    model.load_state_dict({n: state[n] for n in expected}, strict=True, assign=True)
    return model


def _feature_extractor(kind: str, folder: Path | None, config: PretrainedConfig) -> Any:
    """The input processor the reference pairs with the encoder."""
    from transformers import Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    if kind == WAV2VEC2:
        # The reference builds Wav2Vec2FeatureExtractor(<path>) with the path landing in `feature_size`: every
        # other setting is the class default (do_normalize=True), whatever preprocessor_config.json says.
        return Wav2Vec2FeatureExtractor()
    if folder is not None and (folder / "preprocessor_config.json").is_file():
        return WhisperFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
    # whisper-large-v3's preprocessor settings are the class defaults apart from the 128 mel bins.
    return WhisperFeatureExtractor(feature_size=config.num_mel_bins)


def build_audio_encoder(
    kind: str,
    state: dict[str, torch.Tensor],
    *,
    config: PretrainedConfig | None = None,
    folder: Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    source: str = "state dict",
) -> AudioEncoder:
    """An AudioEncoder from a module-relative state dict (config inferred from tensor shapes when not given)."""
    config = config or infer_config(kind, state)
    layers = config.num_hidden_layers if kind == WAV2VEC2 else config.encoder_layers
    if layers != REQUIRED_LAYERS[kind]:
        spec = VERSIONS[ENCODER_KIND_TO_VERSION[kind]]
        raise AudioEncoderError(
            f"{source} is a {kind} encoder with {layers} layers; LongCat-Video-Avatar {spec.version} needs "
            f"{spec.encoder_name} ({REQUIRED_LAYERS[kind]} layers) from {spec.encoder_home}"
        )
    model = _build_module(kind, config, state)
    model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return AudioEncoder(
        kind=kind, model=model, feature_extractor=_feature_extractor(kind, folder, config), source=source
    )


def check_encoder_kind(kind: str, version: str | None, source: str) -> None:
    """Raise AudioEncoderError naming the needed encoder when `kind` does not serve `version`."""
    if version is None:
        return
    spec = version_spec(version)
    if kind != spec.encoder_kind:
        other = VERSIONS[ENCODER_KIND_TO_VERSION[kind]]
        raise AudioEncoderError(
            f"{source} is a {kind} audio encoder ({other.encoder_name}, for LongCat-Video-Avatar {other.version}); "
            f"LongCat-Video-Avatar {spec.version} needs {spec.encoder_name}: the {spec.encoder_name}/ folder of "
            f"{spec.encoder_home} (in models/longcat/), or a {spec.encoder_name} .safetensors in models/audio_encoders/"
        )


def load_audio_encoder(
    path: str | Path,
    *,
    version: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> AudioEncoder:
    """Load a wav2vec2 or Whisper encoder from a folder or single file; refuse the wrong kind for `version`."""
    path = Path(path).expanduser()
    file = find_weight_file(path)
    kind, state = load_encoder_state(file)
    check_encoder_kind(kind, version, str(path))
    folder = path if path.is_dir() else file.parent
    config = _sibling_config(folder, kind)
    return build_audio_encoder(kind, state, config=config, folder=folder, device=device, dtype=dtype, source=str(path))


def load_audio_encoder_from_state_dict(
    state_dict: dict[str, torch.Tensor],
    *,
    version: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> AudioEncoder:
    """An AudioEncoder from an in-memory state dict in any supported naming (e.g. ComfyUI's AUDIO_ENCODER weights)."""
    kind = detect_encoder_kind(state_dict)
    check_encoder_kind(kind, version, "the given state dict")
    state = {}
    for name, tensor in state_dict.items():
        local = strip_prefix(name, kind)
        if local is not None:
            state[local] = tensor
    return build_audio_encoder(kind, state, device=device, dtype=dtype)
