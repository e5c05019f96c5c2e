"""Reading audio-encoder weights from official folders and single files, and telling wav2vec2 from Whisper by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ..checkpoints.errors import CheckpointError
from ..checkpoints.weight_files import WeightSource, open_weights, read_weights
from ..checkpoints.weight_headers import index_weight_map
from .errors import AudioEncoderError

WAV2VEC2 = "wav2vec2"
WHISPER = "whisper"

# Weight files of a transformers folder, in the order transformers' from_pretrained() prefers them without a
# `variant`; the fp32 index (whisper-large-v3 ships `model.safetensors.index.fp32.json`) is the fallback.
FOLDER_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "model.safetensors.index.fp32.json",
    "model.fp32.safetensors",
    "pytorch_model.bin.index.fp32.json",
    "pytorch_model.fp32.bin",
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def find_weight_file(path: Path) -> Path:
    """The file to read for `path`: the path itself, or the preferred weight/index file inside a folder."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise AudioEncoderError(f"audio encoder not found: {path}")
    for name in FOLDER_WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    indexes = sorted(path.glob("*.safetensors.index*.json"))
    if indexes:
        return indexes[0]
    raise AudioEncoderError(
        f"no audio-encoder weights in {path}: expected model.safetensors, a *.safetensors.index*.json with its shards, "
        "or pytorch_model.bin (as in chinese-wav2vec2-base/ or whisper-large-v3/)"
    )


def _load_pickle(file: Path) -> dict[str, torch.Tensor]:
    """A torch-pickled state dict (`pytorch_model.bin`), loaded with weights_only so no code runs."""
    try:
        data = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or non-weight pickles
        raise AudioEncoderError(f"cannot read {file} as a PyTorch state dict: {exc}") from exc
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise AudioEncoderError(f"{file} does not hold a state dict")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


def _open(file: Path) -> WeightSource:
    """The tensors of a safetensors file or shard index, via the pack's weight reader."""
    if not (file.name.endswith(".json") or file.suffix == ".safetensors"):
        raise AudioEncoderError(f"unsupported audio-encoder file type: {file.name} (use .safetensors or .bin)")
    try:
        return open_weights(file)
    except CheckpointError as exc:
        raise AudioEncoderError(f"cannot read {file} as safetensors weights: {exc}") from exc


def tensor_names(file: Path) -> list[str]:
    """Names of all tensors in a safetensors weight file or index (headers only)."""
    return list(_open(file).tensors)


def read_tensors(file: Path, wanted: Callable[[str], bool]) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file or index whose names pass `wanted` (only those are read)."""
    _open(file)
    try:
        return read_weights(file, wanted)
    except CheckpointError as exc:
        raise AudioEncoderError(f"cannot read {file}: {exc}") from exc


def _pickle_index(file: Path) -> dict[str, torch.Tensor] | None:
    """Every tensor of a `pytorch_model.bin.index*.json` (pickled shards), or None for other files."""
    weight_map = index_weight_map(file) if ".bin.index" in file.name else None
    if weight_map is None:
        return None
    shards = sorted({file.parent / name for name in weight_map.values()})
    missing = [p.name for p in shards if not p.is_file()]
    if missing:
        raise AudioEncoderError(f"{file.name} lists shard files that are missing: {missing[:3]}")
    out: dict[str, torch.Tensor] = {}
    for shard in shards:
        out.update(_load_pickle(shard))
    return out


def load_encoder_state(file: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """(kind, module-relative state dict) of the audio encoder in `file`; the Whisper decoder is never read."""
    pickled = _load_pickle(file) if file.suffix in PICKLE_SUFFIXES else _pickle_index(file)
    if pickled is not None:
        kind = detect_encoder_kind(pickled)
        raw = pickled
    else:
        kind = detect_encoder_kind(tensor_names(file))
        raw = read_tensors(file, lambda name: strip_prefix(name, kind) is not None)
    state = {}
    for name, tensor in raw.items():
        local = strip_prefix(name, kind)
        if local is not None:
            state[local] = tensor
    return kind, state


def strip_prefix(name: str, kind: str) -> str | None:
    """Module-relative name of an encoder tensor (wav2vec2: Wav2Vec2Model, whisper: WhisperEncoder), else None."""
    if kind == WAV2VEC2:
        return name.removeprefix("wav2vec2.")
    for prefix in ("model.encoder.", "encoder."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    if name.startswith(("model.decoder.", "decoder.", "proj_out.")):
        return None
    return name


def detect_encoder_kind(names: Iterable[str]) -> str:
    """WAV2VEC2 or WHISPER from tensor names (official folders, transformers files, ComfyUI audio_encoders files)."""
    names = set(names)
    if any(n.removeprefix("wav2vec2.").startswith("feature_extractor.conv_layers.") for n in names):
        return WAV2VEC2
    bare = {strip_prefix(n, WHISPER) for n in names}
    if {"conv1.weight", "conv2.weight", "embed_positions.weight"} <= bare:
        return WHISPER
    sample = sorted(names)[:4]
    raise AudioEncoderError(
        "not a wav2vec2 or Whisper audio encoder (no 'feature_extractor.conv_layers.*' or 'encoder.conv1/embed_positions' "
        f"tensors; first names: {sample}). LongCat v1.0 needs chinese-wav2vec2-base, v1.5 needs whisper-large-v3."
    )
