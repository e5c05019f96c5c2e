"""Audio-encoder loading: official folders, the fp32 sharded index, ComfyUI single files, detection and refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import WhisperConfig, WhisperModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from pipeline.audio.encoder_config import infer_whisper_config
from pipeline.audio.encoders import load_audio_encoder, load_audio_encoder_from_state_dict
from pipeline.audio.errors import AudioEncoderError
from pipeline.audio.features import embed_speech
from support import refvec
from support.audio_helpers import speech_like, tiny_encoder, tiny_encoder_dir

REALCKPT_WHISPER = refvec.REPO_ROOT.parent / "shared" / "realckpt" / "whisper-large-v3"


def _tensors(file: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(file), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)


def _embedding(encoder, seconds: float = 1.0) -> torch.Tensor:
    speech = speech_like(seconds)[0]
    return embed_speech(speech, encoder, noise=np.zeros(len(speech)))


def _assert_same_model(loaded, reference) -> None:
    """Same module class, same config values, bit-identical weights: the two encoders compute the same thing."""
    assert type(loaded.model) is type(reference.model) and loaded.kind == reference.kind
    assert loaded.model.config.to_diff_dict() == reference.model.config.to_diff_dict()
    expected = reference.model.state_dict()
    actual = loaded.model.state_dict()
    assert set(actual) == set(expected)
    for name, tensor in actual.items():
        assert torch.equal(tensor, expected[name]), name


def test_official_wav2vec2_folder_loads_bin_with_prefix_and_legacy_weight_norm() -> None:
    encoder = tiny_encoder("v1.0")
    assert encoder.kind == "wav2vec2" and encoder.version == "v1.0" and encoder.dtype == torch.float32
    assert encoder.model.config._attn_implementation == "eager"  # as the reference's wrapper forces
    source = torch.load(tiny_encoder_dir("v1.0") / "pytorch_model.bin", weights_only=True)
    loaded = encoder.model.state_dict()
    conv = "encoder.pos_conv_embed.conv."
    assert torch.equal(loaded[conv + "parametrizations.weight.original0"], source["wav2vec2." + conv + "weight_g"])
    assert torch.equal(loaded[conv + "parametrizations.weight.original1"], source["wav2vec2." + conv + "weight_v"])
    for name, tensor in loaded.items():
        if "parametrizations" not in name:
            assert torch.equal(tensor, source["wav2vec2." + name]), name


def test_comfyui_single_wav2vec2_file_infers_the_config(tmp_path: Path) -> None:
    folder_model = tiny_encoder("v1.0").model
    file = tmp_path / "chinese_wav2vec2_base.safetensors"  # the name says nothing; the tensors decide
    save_file({k: v.contiguous() for k, v in folder_model.state_dict().items()}, str(file))
    encoder = load_audio_encoder(file, version="v1.0")
    config, reference = encoder.model.config, folder_model.config
    for key in ("hidden_size", "num_hidden_layers", "intermediate_size", "conv_dim", "conv_kernel", "conv_stride"):
        assert getattr(config, key) == getattr(reference, key), key
    assert (config.feat_extract_norm, config.do_stable_layer_norm, config.conv_bias) == ("group", False, False)
    assert (config.num_conv_pos_embeddings, config.num_conv_pos_embedding_groups) == (128, 16)
    assert config.num_attention_heads == 1  # 64-wide heads; the tiny test model is only 32 wide
    for name, tensor in encoder.model.state_dict().items():
        assert torch.equal(tensor, folder_model.state_dict()[name]), name


def test_single_file_beside_its_config_matches_the_folder_exactly(tmp_path: Path) -> None:
    shutil.copy(tiny_encoder_dir("v1.0") / "config.json", tmp_path / "config.json")
    source = _tensors(tiny_encoder_dir("v1.0") / "model.safetensors")  # wav2vec2. prefix, weight_g/weight_v
    save_file(source, str(tmp_path / "encoder.safetensors"))
    single = load_audio_encoder(tmp_path / "encoder.safetensors")
    assert torch.equal(_embedding(single), _embedding(tiny_encoder("v1.0")))


def test_whisper_folder_loads_only_the_encoder() -> None:
    encoder = tiny_encoder("v1.5")
    assert encoder.kind == "whisper" and encoder.version == "v1.5" and isinstance(encoder.model, WhisperEncoder)
    source = _tensors(tiny_encoder_dir("v1.5") / "model.safetensors")
    for name, tensor in encoder.model.state_dict().items():
        assert torch.equal(tensor, source["model.encoder." + name]), name
    assert encoder.feature_extractor.feature_size == 128 and encoder.feature_extractor.n_samples == 480000


def test_whisper_fp32_sharded_index_variant(tmp_path: Path) -> None:
    source = _tensors(tiny_encoder_dir("v1.5") / "model.safetensors")
    names = sorted(source)
    shards = {"model.fp32-00001-of-00002.safetensors": names[::2], "model.fp32-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in shards.items():
        save_file({k: source[k] for k in keys}, str(tmp_path / shard))
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    (tmp_path / "model.safetensors.index.fp32.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    for extra in ("config.json", "preprocessor_config.json"):
        shutil.copy(tiny_encoder_dir("v1.5") / extra, tmp_path / extra)
    sharded = load_audio_encoder(tmp_path, version="v1.5")
    _assert_same_model(sharded, tiny_encoder("v1.5"))


@pytest.mark.parametrize("prefix", ["model.encoder.", "encoder.", ""])
def test_comfyui_single_whisper_file(tmp_path: Path, prefix: str) -> None:
    source = _tensors(tiny_encoder_dir("v1.5") / "model.safetensors")
    encoder_only = {prefix + k.removeprefix("model.encoder."): v for k, v in source.items() if "encoder." in k}
    save_file(encoder_only, str(tmp_path / "whisper_large_v3_encoder.safetensors"))
    encoder = load_audio_encoder(tmp_path / "whisper_large_v3_encoder.safetensors", version="v1.5")
    config = encoder.model.config
    assert (config.d_model, config.encoder_layers, config.num_mel_bins, config.encoder_ffn_dim) == (32, 32, 128, 64)
    assert config.max_source_positions == 1500
    for name, tensor in encoder.model.state_dict().items():
        assert torch.equal(tensor, source["model.encoder." + name]), name


def test_whisper_pytorch_bin_and_in_memory_state_dict(tmp_path: Path) -> None:
    source = _tensors(tiny_encoder_dir("v1.5") / "model.safetensors")
    torch.save(source, tmp_path / "pytorch_model.bin")
    shutil.copy(tiny_encoder_dir("v1.5") / "config.json", tmp_path / "config.json")
    from_bin = load_audio_encoder(tmp_path)
    _assert_same_model(from_bin, tiny_encoder("v1.5"))
    from_memory = load_audio_encoder_from_state_dict(source, version="v1.5")
    assert from_memory.kind == "whisper" and from_memory.model.config.encoder_attention_heads == 1


def test_dtype_and_device_arguments() -> None:
    double = load_audio_encoder(tiny_encoder_dir("v1.0"), dtype=torch.float64, device="cpu")
    assert double.dtype == torch.float64 and double.device == torch.device("cpu")
    emb, reference = _embedding(double), _embedding(tiny_encoder("v1.0"))
    assert emb.dtype == torch.float32  # features always come back as float32
    assert (emb - reference).abs().max() < 1e-4 and not torch.equal(emb, reference)  # computed in float64
    half = load_audio_encoder(tiny_encoder_dir("v1.0"), dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and torch.isfinite(_embedding(half)).all()


@pytest.mark.parametrize(
    ("version", "folder_version", "needed"),
    [("v1.0", "v1.5", "chinese-wav2vec2-base"), ("v1.5", "v1.0", "whisper-large-v3")],
)
def test_wrong_encoder_kind_names_the_one_needed(version: str, folder_version: str, needed: str) -> None:
    with pytest.raises(AudioEncoderError, match=needed) as info:
        load_audio_encoder(tiny_encoder_dir(folder_version), version=version)
    assert "huggingface.co/meituan-longcat" in str(info.value)


def test_unknown_missing_and_truncated_files_are_refused(tmp_path: Path) -> None:
    save_file({"blocks.0.attn.qkv.weight": torch.zeros(3, 3)}, str(tmp_path / "dit.safetensors"))
    with pytest.raises(AudioEncoderError, match="not a wav2vec2 or Whisper"):
        load_audio_encoder(tmp_path / "dit.safetensors")
    with pytest.raises(AudioEncoderError, match="not found"):
        load_audio_encoder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioEncoderError, match="pytorch_model.bin"):
        load_audio_encoder(tmp_path / "empty")
    (tmp_path / "broken.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(AudioEncoderError, match="safetensors"):
        load_audio_encoder(tmp_path / "broken.safetensors")
    source = _tensors(tiny_encoder_dir("v1.5") / "model.safetensors")
    shallow = {k: v for k, v in source.items() if not any(f"layers.{i}." in k for i in range(24, 32))}
    with pytest.raises(AudioEncoderError, match="24 layers"):
        load_audio_encoder_from_state_dict(shallow)
    incomplete = {k: v for k, v in source.items() if "layers.3.fc2" not in k}
    with pytest.raises(AudioEncoderError, match="lacks"):
        load_audio_encoder_from_state_dict(incomplete)


def test_real_whisper_large_v3_index_matches_the_encoder_we_build() -> None:
    """The real fp32 index names exactly the encoder tensors our loader asks for, with the real total size."""
    config = WhisperConfig.from_pretrained(str(REALCKPT_WHISPER))
    weight_map = json.loads((REALCKPT_WHISPER / "model.safetensors.index.fp32.json").read_text())
    with torch.device("meta"):
        encoder = WhisperEncoder(config)
        full = WhisperModel(config)
    encoder_names = {k for k in weight_map["weight_map"] if k.startswith("model.encoder.")}
    assert encoder_names == {"model.encoder." + k for k in encoder.state_dict()}
    assert set(weight_map["weight_map"]) == {"model." + k for k in full.state_dict()}
    assert sum(p.numel() for p in full.state_dict().values()) * 4 == weight_map["metadata"]["total_size"]
    inferred = infer_whisper_config(dict(encoder.state_dict()))
    assert (inferred.d_model, inferred.encoder_attention_heads, inferred.encoder_layers) == (1280, 20, 32)
    assert (inferred.encoder_ffn_dim, inferred.num_mel_bins) == (5120, 128)
