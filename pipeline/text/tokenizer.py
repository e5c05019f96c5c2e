"""The umT5 tokenizer from an official `tokenizer/` folder or from the SentencePiece model inside a single file."""

from __future__ import annotations

from pathlib import Path

from sentencepiece import sentencepiece_model_pb2
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from ..model_catalogue import HUB, LONGCAT_FOLDER, REPO_BASE, TOKENIZER_FOLDER

SPACE_MARK = "\u2581"  # SentencePiece's visible word-boundary mark


def tokenizer_from_spiece(model_proto: bytes) -> PreTrainedTokenizerFast:
    """A fast tokenizer equivalent to a serialized SentencePiece unigram model (as ComfyUI stores `spiece_model`)."""
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_proto)
    spec = proto.trainer_spec
    pieces = [(p.piece, p.score) for p in proto.pieces]
    backend = Tokenizer(Unigram(pieces, unk_id=spec.unk_id, byte_fallback=spec.byte_fallback))
    if proto.normalizer_spec.precompiled_charsmap:
        backend.normalizer = normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap)
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(SPACE_MARK, prepend_scheme="always")]
    )
    backend.decoder = decoders.Metaspace(SPACE_MARK, prepend_scheme="always")
    eos = pieces[spec.eos_id][0]
    backend.post_processor = processors.TemplateProcessing(single=f"$A {eos}", special_tokens=[(eos, spec.eos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=eos, pad_token=pieces[spec.pad_id][0], unk_token=pieces[spec.unk_id][0]
    )


def load_tokenizer_folder(folder: str | Path) -> PreTrainedTokenizerBase:
    """Load `tokenizer.json` exactly as written (transformers 5's T5Tokenizer class would reset <unk> to id 2)."""
    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(str(folder))
    if (folder / "spiece.model").is_file():
        return tokenizer_from_spiece((folder / "spiece.model").read_bytes())
    raise FileNotFoundError(
        f"no tokenizer.json or spiece.model in {folder}; use {REPO_BASE}'s {TOKENIZER_FOLDER}/ folder "
        f"({HUB}{REPO_BASE}, models/{LONGCAT_FOLDER}/{REPO_BASE}/{TOKENIZER_FOLDER}/)."
    )
