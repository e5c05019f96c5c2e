"""Model downloads on request: the files one choice needs, from the Hugging Face hub into the official layout.

The model catalogue says which official components a version needs; only their files are fetched (huggingface_hub's
`allow_patterns`: never LongCat-Video's base `dit/` or its LoRAs), into `<models>/longcat/<repository>/` exactly as
the repositories ship them. huggingface_hub does the transfers: it honours HF_ENDPOINT and HF_TOKEN, shows progress
bars and resumes a broken transfer with a Range request; files finished by an earlier run are not fetched again.
Before anything is fetched, the sizes in the hub's metadata are checked against the free disk space; afterwards
every file is checked against the hub's sha256 (LFS files) or git blob id (small files): a file that does not match
is deleted and reported. Nothing here runs unless a user asks (`download` command, the loaders' button).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import AvatarError, InvalidParametersError
from .shared import model_catalogue as c
from .shared import versions

Event = Callable[[dict[str, Any]], None]  # progress events: plan, fetched, verified, done
REVISION = "main"  # the repositories' published branch
DIT_FORMATS = {"1.5": {"int8": c.DIT_V15_INT8, "bf16": c.DIT_V15_BF16}, "1.0": {"bf16": c.DIT_V10_SINGLE}}
OPTIONAL_FLAGS = {
    c.LORA_V15_DMD: "with_lora",
    c.DIT_V10_MULTI: "with_multi_speaker",
    c.VOCAL_SEPARATOR_V15: "with_separator",
    c.VOCAL_SEPARATOR_V10: "with_separator",
}  # the choice's flag that asks for each optional component
DISK_MARGIN_BYTES = 512 * 1024**2  # left free beyond the download: the disk is never filled to the last byte
HASH_CHUNK = 8 * 1024**2  # bytes read at a time while hashing multi-GB shards
VERIFIED_RECORD = ".cache/longcat-avatar-verified.json"  # per repository folder, beside huggingface_hub's .cache


class DownloadError(AvatarError):
    """A download that cannot start or did not end with every file intact."""


@dataclass(frozen=True)
class Choice:
    """What to download: a version, the DiT's format, and the optional parts."""

    version: str
    fmt: str
    with_lora: bool = False
    with_multi_speaker: bool = False
    with_separator: bool = True

    def problems(self) -> list[str]:
        """Why this choice cannot be downloaded (empty when it can)."""
        formats = DIT_FORMATS.get(self.version)
        if formats is None:
            return [f"version must be one of {', '.join(DIT_FORMATS)}, got {self.version!r}"]
        found = [] if self.fmt in formats else [f"v{self.version} ships the DiT as {' or '.join(formats)}"]
        if self.with_lora and self.version != "1.5":
            found.append("only v1.5 has a LoRA (the 8-step distillation LoRA)")
        if self.with_multi_speaker and self.version != "1.0":
            found.append("v1.5's DiT serves one and two speakers: --with-multi-speaker is for v1.0")
        return found

    def cli_args(self) -> list[str]:
        """The `download` arguments that ask for this choice (see `add_arguments`)."""
        flags = {"--with-lora": self.with_lora, "--with-multi-speaker": self.with_multi_speaker}
        flags["--no-vocal-separator"] = not self.with_separator
        return ["--version", self.version, "--format", self.fmt, *(flag for flag, on in flags.items() if on)]


def default_format(version: str) -> str:
    """The DiT format downloaded when none is named: the first listed (int8 for v1.5, the smaller one)."""
    return next(iter(DIT_FORMATS.get(version, {"bf16": None})))


@dataclass(frozen=True)
class HubFile:
    """One file of a repository, with what the hub says about it."""

    repo: str
    path: str
    size: int
    sha256: str | None  # LFS files
    blob_id: str | None  # git's sha1 of the blob (what small, non-LFS files are checked against)


@dataclass
class Plan:
    """The files of a choice and the commit of each repository they come from."""

    commits: dict[str, str]
    files: list[HubFile]

    def missing(self, longcat_dir: Path) -> list[HubFile]:
        """Files not yet on disk at their full size."""
        return [f for f in self.files if not _has_size(longcat_dir / f.repo / f.path, f.size)]


def repo_id(repo: str) -> str:
    """`meituan-longcat/<repository>`."""
    return f"{c.HUB_ORG}/{repo}"


def components(choice: Choice) -> list[c.Official]:
    """The official components a choice needs: every required one (the DiT in its format) and the asked-for extras."""
    dit = DIT_FORMATS[choice.version][choice.fmt]
    other_formats = set(DIT_FORMATS[choice.version].values()) - {dit}
    chosen: list[c.Official] = []
    for component in c.VERSION_COMPONENTS[choice.version]:
        official = [o for o in component.options if isinstance(o, c.Official) and o not in other_formats]
        if component.required:
            chosen += official[:1]
        else:
            chosen += [o for o in official if getattr(choice, OPTIONAL_FLAGS[o])]
    return chosen


def allow_patterns(choice: Choice) -> dict[str, list[str]]:
    """Repository -> the patterns of the files it must give (folders as `folder/*`)."""
    patterns: dict[str, list[str]] = {}
    for part in components(choice):
        patterns.setdefault(part.repo, []).append(f"{part.path}/*" if part.marker else part.path)
    patterns[c.UMT5.repo].append(f"{c.TOKENIZER_FOLDER}/*")  # the umT5 tokenizer ships beside text_encoder/
    patterns.setdefault(versions.get_version(choice.version).scheduler_repo, []).append(f"{c.SCHEDULER_FOLDER}/*")
    return patterns


@contextmanager
def hub_errors(repo: str) -> Iterator[None]:
    """Turn huggingface_hub's errors into messages that say what to do."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    try:
        yield
    except OfflineModeIsEnabled as error:
        raise DownloadError("HF_HUB_OFFLINE is set, so nothing can be downloaded; unset it and retry") from error
    except HfHubHTTPError as error:
        status = getattr(error.response, "status_code", None)
        if isinstance(error, RepositoryNotFoundError) or status in (401, 403):  # also gated repositories
            raise DownloadError(
                f"the hub refused {repo_id(repo)} ({status}): if it needs a login, accept its terms on its page and "
                "set HF_TOKEN (or run `hf auth login`); check HF_ENDPOINT if you use a mirror"
            ) from error
        raise DownloadError(f"the hub failed for {repo_id(repo)}: {error}") from error
    except DownloadError:
        raise
    except Exception as error:  # connection and timeout errors: requests' or httpx's, by huggingface_hub version
        raise DownloadError(f"could not download from {repo_id(repo)}: {type(error).__name__}: {error}") from error


def make_plan(choice: Choice, endpoint: str | None = None) -> Plan:
    """Ask the hub which files the choice's patterns match, with their sizes and hashes (nothing is downloaded)."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    api = HfApi(endpoint=endpoint)
    commits, files = {}, []
    for repo, patterns in allow_patterns(choice).items():
        with hub_errors(repo):
            info = api.model_info(repo_id(repo), revision=REVISION, files_metadata=True)
        siblings = {s.rfilename: s for s in info.siblings or []}
        for pattern in patterns:
            if not any(True for _ in filter_repo_objects(siblings, allow_patterns=[pattern])):
                raise DownloadError(f"{repo_id(repo)} has no {pattern} on the hub; its layout changed: report this")
        commits[repo] = str(info.sha)
        for name in filter_repo_objects(sorted(siblings), allow_patterns=patterns):
            s = siblings[name]
            size = s.lfs.size if s.lfs else s.size
            files.append(HubFile(repo, name, int(size or 0), s.lfs.sha256 if s.lfs else None, s.blob_id))
    return Plan(commits, files)


def _has_size(path: Path, size: int) -> bool:
    return path.is_file() and path.stat().st_size == size


def check_disk_space(plan: Plan, longcat_dir: Path) -> int:
    """Bytes still to fetch; raises DownloadError when the disk holding `longcat_dir` lacks room for them."""
    needed = sum(f.size for f in plan.missing(longcat_dir))
    existing = next(p for p in (longcat_dir, *longcat_dir.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if needed + DISK_MARGIN_BYTES > free:
        raise DownloadError(
            f"not enough free disk space for the download: it needs {needed / 1e9:.2f} GB (plus "
            f"{DISK_MARGIN_BYTES / 1e9:.1f} GB to spare) in {longcat_dir}, but only {free / 1e9:.2f} GB are free. "
            "Free some space or pass --models-dir on a larger disk."
        )
    return needed


def fetch(plan: Plan, longcat_dir: Path, endpoint: str | None = None, on_event: Event | None = None) -> None:
    """Download the plan's files one at a time, at the planned commits (finished files are skipped).

    One file at a time, in this thread: Ctrl-C (and SIGTERM, see `cmd_download`) then stops the transfer at once and
    huggingface_hub cleans up after it, where a pool of download threads would finish their files first.
    """
    from huggingface_hub import hf_hub_download

    for hub_file in plan.files:
        with hub_errors(hub_file.repo):
            hf_hub_download(
                repo_id(hub_file.repo),
                hub_file.path,
                revision=plan.commits[hub_file.repo],
                local_dir=longcat_dir / hub_file.repo,
                endpoint=endpoint,
            )
        if on_event:
            on_event({"event": "fetched", "repo": hub_file.repo, "path": hub_file.path})


def bytes_on_disk(files: list[HubFile], longcat_dir: Path) -> int:
    """How much of `files` is on disk: finished files, plus huggingface_hub's partial files (for progress displays).

    huggingface_hub keeps a file being downloaded under `<repository>/.cache/huggingface/download/<folder>/` with the
    file's etag (its sha256 or blob id) in the name and `.incomplete` at the end.
    """
    total = 0
    for hub_file in files:
        path = longcat_dir / hub_file.repo / hub_file.path
        if path.is_file():
            total += path.stat().st_size
            continue
        partial_dir = longcat_dir / hub_file.repo / ".cache" / "huggingface" / "download" / Path(hub_file.path).parent
        etag = hub_file.sha256 or hub_file.blob_id
        if etag and partial_dir.is_dir():
            total += sum(p.stat().st_size for p in partial_dir.glob(f"*{etag}*.incomplete") if p.is_file())
    return total


def file_digest(path: Path, hub_file: HubFile) -> str:
    """sha256 of an LFS file, git's blob sha1 of a small one: what the hub's metadata states."""
    digest = hashlib.sha256() if hub_file.sha256 else hashlib.sha1()
    if not hub_file.sha256:
        digest.update(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(plan: Plan, longcat_dir: Path, on_event: Event | None = None) -> None:
    """Check every file against the hub's hashes; delete and report those that differ."""
    refused = []
    for repo in plan.commits:
        record_path = longcat_dir / repo / VERIFIED_RECORD
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        for hub_file in (f for f in plan.files if f.repo == repo):
            path = longcat_dir / repo / hub_file.path
            expected = hub_file.sha256 or hub_file.blob_id
            stamp = [path.stat().st_size, path.stat().st_mtime_ns, expected] if path.is_file() else None
            unchanged = stamp is not None and record.get(hub_file.path) == stamp  # an earlier run checked it
            actual = expected if unchanged else file_digest(path, hub_file) if path.is_file() else "missing"
            if actual != expected:
                path.unlink(missing_ok=True)
                record.pop(hub_file.path, None)
                kind = "sha256" if hub_file.sha256 else "git blob id"
                refused.append(f"{repo}/{hub_file.path}: {kind} {actual}, the hub says {expected}")
                continue
            record[hub_file.path] = stamp
            if on_event:
                on_event({"event": "verified", "repo": repo, "path": hub_file.path})
        record_path.parent.mkdir(parents=True, exist_ok=True)
        record_path.write_text(json.dumps(record, indent=1))
    if refused:
        raise DownloadError(
            "these files do not match the hub's hashes and were deleted (a corrupted transfer or disk): "
            + "; ".join(refused)
            + ". Run the download again to fetch them anew."
        )


def download(choice: Choice, models_dir: Path, endpoint: str | None = None, on_event: Event | None = None) -> Plan:
    """Plan, check the disk, fetch, verify: the whole download of one choice into `models_dir/longcat/`."""
    problems = choice.problems()
    if problems:
        raise DownloadError("; ".join(problems))
    longcat_dir = Path(models_dir) / c.LONGCAT_FOLDER
    plan = make_plan(choice, endpoint)
    to_fetch = check_disk_space(plan, longcat_dir)
    if on_event:
        files = [asdict(f) for f in plan.files]
        on_event({"event": "plan", "longcat_dir": str(longcat_dir), "to_fetch": to_fetch, "files": files})
    fetch(plan, longcat_dir, endpoint, on_event)
    verify(plan, longcat_dir, on_event)
    if on_event:
        on_event({"event": "done", "files": len(plan.files), "bytes": sum(f.size for f in plan.files)})
    return plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """download's options."""
    add = parser.add_argument
    add("--version", choices=tuple(DIT_FORMATS), default="1.5", help="model version (default 1.5)")
    add("--format", dest="fmt", choices=("int8", "bf16"), help=f"the DiT's weights: int8 ({c.DIT_V15_INT8.size_gb:g} "
        f"GB, v1.5's default) or bf16 ({c.DIT_V15_BF16.size_gb:g} GB; v1.0's only format)")  # fmt: skip
    add(
        "--with-lora", action="store_true", help=f"also v1.5's 8-step distillation LoRA ({c.LORA_V15_DMD.size_gb:g} GB)"
    )
    add("--with-multi-speaker", action="store_true", help="also v1.0's multi-speaker DiT (two people talking)")
    separator = c.VOCAL_SEPARATOR_V15
    add("--no-vocal-separator", action="store_true", help=f"skip {separator.path} ({separator.size_gb * 1000:.0f} MB; "
        "separates speech from music before the audio features)")  # fmt: skip
    add("--models-dir", type=Path, help="ComfyUI's models folder; files go to its longcat/ (default: the models "
        "folder of $COMFYUI_DIR or of the ComfyUI this pack is installed in)")  # fmt: skip
    add("--json", action="store_true", help="progress as JSON lines on stdout, no progress bars (for programs)")


def _models_dir(explicit: Path | None) -> Path:
    from .doctor import find_comfyui

    comfyui = find_comfyui(None)
    if explicit is None and comfyui is None:
        raise DownloadError(
            "where should the models go? Pass --models-dir (ComfyUI's models folder) or set COMFYUI_DIR"
        )
    return (explicit or comfyui / "models").expanduser().resolve()


def _print_event(event: dict[str, Any]) -> None:
    if event["event"] == "plan":
        total = sum(f["size"] for f in event["files"])
        print(f"{len(event['files'])} files, {total / 1e9:.2f} GB ({event['to_fetch'] / 1e9:.2f} GB to fetch) "
              f"into {event['longcat_dir']}", flush=True)  # fmt: skip
    elif event["event"] == "done":
        print(f"All {event['files']} files match the hub's hashes.", flush=True)


def _stop_on_terminate() -> None:
    """SIGTERM / Windows' CTRL_BREAK (how the ComfyUI button cancels) unwind like Ctrl-C: partial files are handled."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGBREAK"):  # SIGBREAK exists on Windows only
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), interrupt)


def cmd_download(args: argparse.Namespace) -> int:
    """`download`: fetch one choice of files, verify them, say what to run next."""
    fmt = args.fmt or default_format(args.version)
    choice = Choice(args.version, fmt, args.with_lora, args.with_multi_speaker, not args.no_vocal_separator)
    if choice.problems():
        raise InvalidParametersError(choice.problems())
    models_dir = _models_dir(args.models_dir)
    _stop_on_terminate()
    if args.json:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    emit = (lambda event: print(json.dumps(event), flush=True)) if args.json else _print_event
    try:
        download(choice, models_dir, on_event=emit)
    except KeyboardInterrupt:
        print("download interrupted: finished files are kept; run it again to continue", file=sys.stderr)
        return 130  # the shell's code for Ctrl-C
    if not args.json:
        print(f"Done. Check with: python -m longcat_avatar doctor --models-dir {models_dir}")
    return 0
