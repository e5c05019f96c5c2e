"""umT5 text encoding: prompt cleaning, tokenizer, folder / single-file / fp8-scaled loading, padding, the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import sentencepiece as spm
import torch
from safetensors.torch import load_file, save_file

from pipeline.text.encoder import CachedTextEncoder, encode_prompts
from pipeline.text.prompt import DEFAULT_NEGATIVE_PROMPT, MAX_TEXT_TOKENS, clean_prompt
from pipeline.text.tokenizer import load_tokenizer_folder, tokenizer_from_spiece
from pipeline.text.umt5_loader import TextEncoderFormatError, load_text_encoder
from support.tiny_models import CORPUS, TinyTextEncoder, build_tiny_umt5, write_comfy_umt5_file

PROMPT = "A woman speaks   to the camera &amp;amp; smiles.\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyTextEncoder:
    """A tiny umT5 in the official text_encoder/ + tokenizer/ layout."""
    return build_tiny_umt5(tmp_path_factory.mktemp("longcat-video"), seed=5)


def test_clean_prompt_matches_the_reference_recipe() -> None:
    """ftfy fixes mojibake, HTML entities are unescaped twice, whitespace runs collapse."""
    assert clean_prompt(PROMPT) == "A woman speaks to the camera & smiles."
    assert clean_prompt("  caf\u00c3\u00a9\t\tlatte ") == "caf\u00e9 latte"
    assert DEFAULT_NEGATIVE_PROMPT.startswith("Close-up, Bright tones") and MAX_TEXT_TOKENS == 512


def test_tokenizer_matches_sentencepiece(tiny: TinyTextEncoder) -> None:
    """Our fast tokenizer gives SentencePiece's ids plus </s>; <unk> keeps umT5's id 3 (not transformers' 2)."""
    processor = spm.SentencePieceProcessor(model_proto=tiny.spiece)
    for tokenizer in (tokenizer_from_spiece(tiny.spiece), load_tokenizer_folder(tiny.tokenizer_dir)):
        for text in [*CORPUS, "zebra \u00e9t\u00e9 @@"]:
            assert tokenizer(text).input_ids == processor.encode(text) + [1]
        assert tokenizer("\u4e2d").input_ids[-2] == 3 == tokenizer.unk_token_id
        assert tokenizer.pad_token_id == 0 and tokenizer.eos_token_id == 1


def test_folder_encoding_pads_to_512_and_keeps_padded_positions(tiny: TinyTextEncoder) -> None:
    """[1, 1, 512, D] embeddings, mask = real tokens + </s>, padded positions carry (non-zero) encoder outputs."""
    encoder = load_text_encoder(tiny.text_encoder_dir.parent, dtype=torch.float32)
    embedding = encode_prompts(encoder, [PROMPT])[0]
    assert embedding.embeds.shape == (1, 1, 512, 32) and embedding.mask.shape == (1, 512)
    n_tokens = len(encoder.tokenizer(clean_prompt(PROMPT)).input_ids)
    assert embedding.mask.sum().item() == n_tokens and embedding.mask[0, :n_tokens].all()
    assert embedding.embeds[0, 0, n_tokens:].abs().sum() > 0
    ids = encoder.tokenizer(clean_prompt(PROMPT), padding="max_length", max_length=512, return_tensors="pt")
    with torch.no_grad():
        direct = encoder.model(input_ids=ids.input_ids, attention_mask=ids.attention_mask).last_hidden_state
    torch.testing.assert_close(embedding.embeds[0, 0], direct[0])
    long = encode_prompts(encoder, ["word " * 2000])[0]
    assert long.mask.sum().item() == 512


def test_single_files_encode_like_the_folder(tiny: TinyTextEncoder, tmp_path: Path) -> None:
    """ComfyUI single file (tokenizer from `spiece_model`) = folder; fp8 "scaled" is dequantised with its scales."""
    folder = encode_prompts(load_text_encoder(tiny.text_encoder_dir, dtype=torch.float32), [PROMPT])[0]
    plain = write_comfy_umt5_file(tiny, tmp_path / "umt5_tiny.safetensors")
    single = encode_prompts(load_text_encoder(plain, dtype=torch.float32), [PROMPT])[0]
    torch.testing.assert_close(single.embeds, folder.embeds)
    assert torch.equal(single.mask, folder.mask)
    scaled = write_comfy_umt5_file(tiny, tmp_path / "umt5_tiny_fp8_scaled.safetensors", fp8_scaled=True)
    fp8 = encode_prompts(load_text_encoder(scaled, dtype=torch.float32), [PROMPT])[0]
    rel = ((fp8.embeds - folder.embeds).norm() / folder.embeds.norm()).item()
    assert 0 < rel < 0.1  # e4m3 keeps ~3 mantissa bits; without the scales the output would be garbage


def test_wrong_files_fail_with_a_useful_message(tiny: TinyTextEncoder, tmp_path: Path) -> None:
    """Not a umT5 file / no tokenizer / missing path: errors name what to download and where to put it."""
    bogus = tmp_path / "clip.safetensors"
    save_file({"text_model.encoder.layers.0.mlp.fc1.weight": torch.zeros(2, 2)}, str(bogus))
    with pytest.raises(TextEncoderFormatError, match="not a umT5 encoder"):
        load_text_encoder(bogus)
    with pytest.raises(TextEncoderFormatError, match="text_encoders"):
        load_text_encoder(tmp_path / "nothing.safetensors")
    no_tokenizer = write_comfy_umt5_file(tiny, tmp_path / "umt5.safetensors")
    stripped = {k: v for k, v in load_file(str(no_tokenizer)).items() if k != "spiece_model"}
    save_file(stripped, str(no_tokenizer))
    with pytest.raises(TextEncoderFormatError, match="tokenizer"):
        load_text_encoder(no_tokenizer)
    assert load_text_encoder(no_tokenizer, tokenizer_dir=tiny.tokenizer_dir).tokenizer.unk_token_id == 3


def test_cache_avoids_loading_the_encoder(tiny: TinyTextEncoder, tmp_path: Path) -> None:
    """A second run with the same prompt never loads the encoder; a new prompt or another encoder does."""
    source = tiny.text_encoder_dir.parent
    first = CachedTextEncoder(source, tmp_path / "cache", dtype=torch.float32)
    reference = first.encode(PROMPT)
    assert first.load_count == 1

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the encoder was loaded although the prompt is cached")

    second = CachedTextEncoder(source, tmp_path / "cache", dtype=torch.float32, loader=refuse)
    again = second.encode(clean_prompt(PROMPT))  # same prompt after cleaning → same entry
    assert second.load_count == 0
    torch.testing.assert_close(again.embeds, reference.embeds, atol=0, rtol=0)
    assert torch.equal(again.mask, reference.mask)
    with pytest.raises(AssertionError, match="was loaded"):
        second.encode("another prompt")
    same = CachedTextEncoder(tiny.text_encoder_dir, tmp_path / "cache", dtype=torch.float32)
    assert same.identity == first.identity  # the root and its text_encoder/ folder are the same encoder
    other = write_comfy_umt5_file(tiny, tmp_path / "other.safetensors", fp8_scaled=True)
    assert CachedTextEncoder(other, tmp_path / "cache", dtype=torch.float32).identity != first.identity
