"""Files that appear whole or not at all: write under a hidden locked temporary name, then link to a free final name.

A process killed while writing leaves only its hidden temporary file, never a file under a final name; the next
writer in that folder (or the next server start) removes temporaries that no live writer holds.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX: an advisory lock on the temporary file tells a live writer's file from a dead one's
    import fcntl
except ImportError:  # pragma: no cover - Windows: an open file cannot be deleted there, which is enough
    fcntl = None  # type: ignore[assignment]

PARTIAL_PREFIX = ".longcat-writing-"  # hidden (dot) and never matching a save prefix's `<stem>_<counter>_` pattern
PARTIAL_SUFFIX = ".part"
PARTIAL_NAME = re.compile(re.escape(PARTIAL_PREFIX) + r"[0-9a-f]+" + re.escape(PARTIAL_SUFFIX))
TOKEN_BYTES = 8  # 64 random bits: two writers never draw the same temporary name


def final_name(stem: str, counter: int, extension: str) -> str:
    """`<stem>_<counter:05>_<ext>`: the name ComfyUI's save nodes give (and get_save_image_path counts)."""
    return f"{stem}_{counter:05}_{extension}"


@contextlib.contextmanager
def partial_file(folder: str | Path) -> Iterator[Path]:
    """A new hidden temporary file in `folder`, locked while the block runs and removed when it ends."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(folder)
    path = folder / f"{PARTIAL_PREFIX}{secrets.token_hex(TOKEN_BYTES)}{PARTIAL_SUFFIX}"
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh file: nobody else can hold it
        yield path
    finally:
        path.unlink(missing_ok=True)  # once published, the final name keeps the data
        os.close(descriptor)  # closing releases the lock


def publish(partial: Path, stem: str, counter: int, extension: str) -> Path:
    """Give a finished temporary file the first free final name from `counter` on, never overwriting a file."""
    with open(partial, "rb") as handle:  # durable before it is visible: a power cut cannot leave an empty video
        os.fsync(handle.fileno())
    while True:
        candidate = partial.parent / final_name(stem, counter, extension)
        try:
            os.link(partial, candidate)  # atomic and fails if the name exists, so two writers never collide
            return candidate
        except FileExistsError:
            counter += 1
        except OSError:  # a file system without hard links (FAT, some network shares): rename a free name
            if candidate.exists():
                counter += 1
                continue
            os.replace(partial, candidate)
            return candidate


def remove_stale_partials(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Delete the temporary files in `folder` that no live writer holds (left by a killed process); return them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob(f"{PARTIAL_PREFIX}*") if recursive else folder.glob(f"{PARTIAL_PREFIX}*")
    removed = []
    for path in candidates:
        if PARTIAL_NAME.fullmatch(path.name) and path.is_file() and _remove_if_unheld(path):
            removed.append(path)
    return removed


def _remove_if_unheld(path: Path) -> bool:
    """Delete `path` unless a live writer holds its lock; True when it was deleted."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # gone meanwhile, or unreadable: not ours to judge
        return False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a live writer holds it
                return False
        try:
            path.unlink()
        except OSError:  # Windows refuses to delete a file another process has open: a live writer
            return False
        return True
    finally:
        os.close(descriptor)
