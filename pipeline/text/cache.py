"""On-disk cache of prompt embeddings, keyed by the text encoder's identity and the cleaned prompt."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

SAMPLE_BYTES = 1 << 20  # hash the first and last MiB of each weight file: cheap, yet changes with the weights
CACHE_FORMAT = "longcat-text-v1"  # bump when the stored layout or the encoding recipe changes


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's size, head and tail (enough to tell encoder files apart without reading gigabytes)."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(SAMPLE_BYTES))
        if size > SAMPLE_BYTES:
            handle.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
            digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()


def source_fingerprint(*paths: Path | None) -> str:
    """Identity of an encoder source: every file of the given folders / files, by relative name and fingerprint."""
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    for root in (p for p in paths if p is not None):
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for file in files:
            digest.update(str(file.relative_to(root) if root.is_dir() else file.name).encode())
            digest.update(file_fingerprint(file).encode())
    return digest.hexdigest()


class EmbeddingCache:
    """A folder of `<key>.safetensors` files holding one prompt's embeddings and attention mask."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def key(self, encoder_id: str, prompt: str, max_tokens: int) -> str:
        """Cache key of one (encoder, cleaned prompt, token budget)."""
        return hashlib.sha256(f"{encoder_id}\n{max_tokens}\n{prompt}".encode()).hexdigest()

    def load(self, key: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(embeds, mask) stored under key, or None."""
        path = self.folder / f"{key}.safetensors"
        if not path.is_file():
            return None
        try:
            tensors = load_file(str(path))
            return tensors["embeds"], tensors["mask"]
        except (OSError, KeyError, RuntimeError, ValueError):
            return None  # a damaged entry is recomputed

    def store(self, key: str, embeds: torch.Tensor, mask: torch.Tensor) -> None:
        """Write atomically (temp file + rename) so concurrent runs never read half a file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        os.close(handle)
        try:
            save_file({"embeds": embeds.contiguous(), "mask": mask.contiguous()}, temp)
            os.replace(temp, self.folder / f"{key}.safetensors")
        finally:
            if os.path.exists(temp):
                os.remove(temp)
