"""Model downloads with huggingface_hub, against a local HTTP server standing in for the Hugging Face hub.

No hub is reachable offline, so `support.fake_hub` serves the hub's protocol (metadata, tree, resolve with ETag,
X-Repo-Commit and Range) for three miniature LongCat repositories. The tests check that a choice fetches exactly its
files into the official layout, that a dropped transfer resumes with a Range request, that a corrupted file is refused
(and deleted), that the free-disk check stops a download before any transfer, and that the command line honours
HF_ENDPOINT and HF_TOKEN; `doctor` then reports everything found.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE

from longcat_avatar.doctor import collect
from longcat_avatar.downloads import Choice, DownloadError, allow_patterns, bytes_on_disk, download, make_plan
from support.fake_hub import FakeHub
from support.longcat_hub import BASE, V10_DEFAULT, V15, V15_INT8_WITH_LORA, longcat_repos
from support.longcat_hub import BIG_SHARD as SHARD

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hf_test_token_for_the_fake_hub"


def on_disk(longcat: Path) -> dict[str, set[str]]:
    """Repository id -> the files under models/longcat/<repository>/ (huggingface_hub's .cache left out)."""
    found: dict[str, set[str]] = {}
    for repo_dir in sorted(p for p in longcat.iterdir() if p.is_dir()):
        files = {p.relative_to(repo_dir).as_posix() for p in repo_dir.rglob("*") if p.is_file()}
        found[f"meituan-longcat/{repo_dir.name}"] = {f for f in files if not f.startswith(".cache/")}
    return found


def content(hub: FakeHub, repo_id: str, path: str) -> bytes:
    """The true bytes of a hub file."""
    return hub.by_id[repo_id].files[path]


def test_hub_download_patterns_follow_the_catalogue() -> None:
    assert allow_patterns(Choice("1.5", "int8")) == {
        "LongCat-Video-Avatar-1.5": ["base_model_int8/*", "whisper-large-v3/*", "vocal_separator/Kim_Vocal_2.onnx",
                                     "scheduler/*"],
        "LongCat-Video": ["vae/*", "text_encoder/*", "tokenizer/*"],
    }  # fmt: skip
    assert Choice("1.0", "int8", with_lora=True).problems() == [
        "v1.0 ships the DiT as bf16",
        "only v1.5 has a LoRA (the 8-step distillation LoRA)",
    ]


def test_hub_download_fetches_only_the_choice_and_doctor_finds_it(tmp_path: Path) -> None:
    events: list[dict] = []
    with FakeHub(longcat_repos()) as hub:
        download(Choice("1.5", "int8", with_lora=True), tmp_path, endpoint=hub.url, on_event=events.append)
        longcat = tmp_path / "longcat"
        assert on_disk(longcat) == V15_INT8_WITH_LORA
        for repo_id, files in V15_INT8_WITH_LORA.items():
            for path in files:
                assert (longcat / repo_id.split("/")[1] / path).read_bytes() == content(hub, repo_id, path), path
        fetched = {(r.repo_id, r.path) for r in hub.downloads("GET")}
        assert fetched == {(repo_id, path) for repo_id, files in V15_INT8_WITH_LORA.items() for path in files}
        plan = events[0]
        assert plan["event"] == "plan" and plan["to_fetch"] == sum(f["size"] for f in plan["files"])
        assert events[-1] == {"event": "done", "files": len(plan["files"]), "bytes": plan["to_fetch"]}

        hub.requests.clear()  # a second run finds everything in place and transfers nothing
        download(Choice("1.5", "int8", with_lora=True), tmp_path, endpoint=hub.url)
        assert hub.downloads("GET") == []

    report = collect(argparse.Namespace(comfyui=tmp_path / "no-comfyui", models_dir=[tmp_path]))
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ready"]["1.5"] is True and report["ready"]["1.0"] is False
    for name in ("avatar model (DiT)", "distillation LoRA", "audio encoder (whisper-large-v3)", "VAE (Wan 2.1)",
                 "text encoder (umT5-XXL)", "vocal separator"):  # fmt: skip
        assert checks[f"v1.5 {name}"]["status"] == "ok", checks[f"v1.5 {name}"]


def test_hub_download_resumes_an_interrupted_transfer(tmp_path: Path) -> None:
    written = DOWNLOAD_CHUNK_SIZE  # huggingface_hub writes what it receives in chunks of this size
    with FakeHub(longcat_repos()) as hub:
        hub.cut[(V15, SHARD)] = written + 300_000  # the connection drops in the middle of the second chunk
        download(Choice("1.5", "int8"), tmp_path, endpoint=hub.url)
        transfers = [r.range for r in hub.downloads("GET") if r.path == SHARD]
        assert transfers == [None, f"bytes={written}-"]
        assert (tmp_path / "longcat" / "LongCat-Video-Avatar-1.5" / SHARD).read_bytes() == content(hub, V15, SHARD)


def test_hub_download_refuses_a_corrupted_file(tmp_path: Path) -> None:
    corrupted = "whisper-large-v3/model.safetensors"
    with FakeHub(longcat_repos()) as hub:
        hub.corrupt.add((V15, corrupted))
        with pytest.raises(DownloadError) as refused:
            download(Choice("1.5", "int8"), tmp_path, endpoint=hub.url)
        expected = hashlib.sha256(content(hub, V15, corrupted)).hexdigest()
        assert f"LongCat-Video-Avatar-1.5/{corrupted}: sha256 " in str(refused.value) and expected in str(refused.value)
        target = tmp_path / "longcat" / "LongCat-Video-Avatar-1.5"
        assert not (target / corrupted).exists() and (target / SHARD).is_file()

        hub.corrupt.clear()  # the next run fetches the refused file again, and only it
        hub.requests.clear()
        download(Choice("1.5", "int8"), tmp_path, endpoint=hub.url)
        assert [r.path for r in hub.downloads("GET")] == [corrupted]
        assert (target / corrupted).read_bytes() == content(hub, V15, corrupted)


def test_hub_download_checks_free_disk_space_before_any_transfer(tmp_path: Path) -> None:
    with FakeHub(longcat_repos()) as hub:
        hub.claimed_size[(BASE, "vae/diffusion_pytorch_model.safetensors")] = 10**16  # 10 PB: no disk has that
        with pytest.raises(DownloadError, match=r"not enough free disk space for the download: it needs 10000000\."):
            download(Choice("1.5", "int8"), tmp_path, endpoint=hub.url)
        assert hub.downloads("GET") == [] and hub.downloads("HEAD") == []
    assert not (tmp_path / "longcat").exists()


def test_hub_download_progress_counts_partial_files(tmp_path: Path) -> None:
    with FakeHub(longcat_repos()) as hub:
        released = hub.hold[(V15, SHARD)] = threading.Event()
        plan = make_plan(Choice("1.5", "int8"), endpoint=hub.url)
        shard = next(f for f in plan.files if f.path == SHARD)
        worker = threading.Thread(target=download, args=(Choice("1.5", "int8"), tmp_path, hub.url), daemon=True)
        worker.start()
        deadline = time.monotonic() + 120  # the held transfer writes half the shard, then waits to be released
        while bytes_on_disk([shard], tmp_path / "longcat") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 0 < bytes_on_disk([shard], tmp_path / "longcat") < shard.size
        released.set()
        worker.join(120)
        assert bytes_on_disk(plan.files, tmp_path / "longcat") == sum(f.size for f in plan.files)


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m longcat_avatar` in the repository, with its own HF_HOME and no inherited hub settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return subprocess.run(
        [sys.executable, "-m", "longcat_avatar", *args], cwd=REPO_ROOT, env=base | env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_hub_download_cli_honours_hf_endpoint_and_hf_token(tmp_path: Path) -> None:
    models = tmp_path / "models"
    with FakeHub(longcat_repos(), token=TOKEN) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home")}
        denied = run_cli(["download", "--version", "1.0", "--models-dir", str(models)], env)
        assert denied.returncode == 1 and "set HF_TOKEN" in denied.stderr, denied.stderr
        assert hub.downloads("GET") == []

        start = len(hub.requests)
        done = run_cli(
            ["download", "--version", "1.0", "--models-dir", str(models), "--json"], env | {"HF_TOKEN": TOKEN}
        )
        assert done.returncode == 0, done.stderr
        events = [json.loads(line) for line in done.stdout.splitlines()]
        assert events[0]["event"] == "plan" and events[-1]["event"] == "done"
        assert {e["path"] for e in events if e["event"] == "verified"} == {f["path"] for f in events[0]["files"]}
        assert {r.authorization for r in hub.requests[start:] if r.repo_id} == {f"Bearer {TOKEN}"}
    assert on_disk(models / "longcat") == V10_DEFAULT

    wrong = run_cli(["download", "--version", "1.0", "--format", "int8", "--models-dir", str(models)], {})
    assert wrong.returncode == 2 and "v1.0 ships the DiT as bf16" in wrong.stderr
