"""A local HTTP server that speaks the part of the Hugging Face hub protocol huggingface_hub downloads with.

No hub is reachable from the test machines, so the download tests run against this stand-in (a real
`http.server.ThreadingHTTPServer` on 127.0.0.1). It answers what huggingface_hub (2.x) calls for `model_info`,
`snapshot_download` and `hf_hub_download` (see its hf_api.py `model_info` / `_iter_repo_tree_pages` and
file_download.py `get_hf_file_metadata` / `http_get`):

- `GET /api/models/{org}/{name}/revision/{rev}` (`?blobs=true`): the commit sha and the siblings with their size,
  blob id and, for LFS files, `lfs.sha256`;
- `GET /api/models/{org}/{name}/tree/{rev}[/{path}]`: the same files in the tree format (`oid`, `lfs.oid`);
- `HEAD` and `GET /{org}/{name}/resolve/{rev}/{path}`: `X-Repo-Commit`, `ETag` (the sha256 for LFS files, which also
  get `X-Linked-Etag` and `X-Linked-Size`), `Content-Length`; a `Range: bytes=N-` request gets 206 and
  `Content-Range`. (`paths-info` is not called by these functions in this huggingface_hub version, so it is not
  served; its `/api/agent-harnesses`, asked once a day for its user agent, gets a 404.)

Faults, set per (repository, path): `cut` ends the first full transfer after N bytes (a dropped connection), `corrupt`
serves other bytes than the metadata's hash, `claimed_size` states a size in the metadata, `hold` sends all but the
last MiB then waits for an event (a transfer in progress). `token` makes every request need `Authorization: Bearer <token>`.
Every request is logged in `requests`.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

POINTER_SIZE = 134  # bytes of a git-lfs pointer file: what the hub reports as lfs.pointerSize
HOLD_TIMEOUT_S = 120  # a held transfer gives up after this long even if the test never releases it
HOLD_TAIL = 1024**2  # a held transfer keeps back its last MiB: the client has written the rest (in 10 MiB chunks)
API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<kind>revision|tree)/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def git_blob_id(data: bytes) -> str:
    """git's object id of a blob: sha1 of `blob <size>\\0` + the bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeRepo:
    """A repository: its files (path -> bytes), which of them are LFS files, its commit."""

    repo_id: str
    files: dict[str, bytes]
    lfs: set[str]
    commit: str = ""

    def __post_init__(self) -> None:
        digest = hashlib.sha1(json.dumps(sorted(self.files)).encode() + self.repo_id.encode())
        self.commit = self.commit or digest.hexdigest()


@dataclass
class Logged:
    """One request the hub received."""

    method: str
    url: str
    repo_id: str
    path: str  # the file, for resolve requests ("" for the API)
    range: str | None
    authorization: str | None


@dataclass
class FakeHub:
    """The server and its faults; use as a context manager."""

    repos: list[FakeRepo]
    token: str | None = None
    cut: dict[tuple[str, str], int] = field(default_factory=dict)
    corrupt: set[tuple[str, str]] = field(default_factory=set)
    claimed_size: dict[tuple[str, str], int] = field(default_factory=dict)
    hold: dict[tuple[str, str], threading.Event] = field(default_factory=dict)
    requests: list[Logged] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_id = {repo.repo_id: repo for repo in self.repos}
        self.lock = threading.Lock()
        hub = self

        class Handler(HubHandler):
            owner = hub

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        for event in self.hold.values():
            event.set()
        self.server.shutdown()
        self.server.server_close()

    def downloads(self, method: str = "GET") -> list[Logged]:
        """The logged file requests (resolve) of one method."""
        with self.lock:
            return [r for r in self.requests if r.path and r.method == method]

    def metadata(self, repo: FakeRepo, path: str) -> dict[str, Any]:
        """What the hub states about one file: size, blob id, sha256 (of the true content)."""
        data = repo.files[path]
        size = self.claimed_size.get((repo.repo_id, path), len(data))
        sha256 = hashlib.sha256(data).hexdigest() if path in repo.lfs else None
        return {"size": size, "blob_id": git_blob_id(data), "sha256": sha256}

    def served_bytes(self, repo: FakeRepo, path: str) -> bytes:
        """The bytes a download gets (flipped when the file is marked corrupt)."""
        data = repo.files[path]
        return bytes(b ^ 0xFF for b in data) if (repo.repo_id, path) in self.corrupt else data


class HubHandler(BaseHTTPRequestHandler):
    """Routes one request; `owner` is the FakeHub."""

    owner: FakeHub

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        """Quiet: the hub's own request log is `FakeHub.requests`."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        """API listings and file bodies."""
        self._route("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        """File metadata."""
        self._route("HEAD")

    def _route(self, method: str) -> None:
        hub, url = self.owner, urlsplit(self.path)
        path = unquote(url.path)
        api, resolve = API.match(path), RESOLVE.match(path)
        match = api or resolve
        repo = hub.by_id.get(match["repo"]) if match else None
        file_path = resolve["path"] if resolve else ""
        with hub.lock:
            hub.requests.append(
                Logged(method, self.path, match["repo"] if match else "", file_path, self.headers.get("Range"),
                       self.headers.get("Authorization"))
            )  # fmt: skip
        if hub.token and self.headers.get("Authorization") != f"Bearer {hub.token}":
            return self._json(401, {"error": "Invalid credentials in Authorization header"}, error_code=None)
        if repo is None:
            return self._json(404, {"error": "Repository not found"}, error_code="RepoNotFound")
        if match["rev"] not in ("main", repo.commit):
            return self._json(404, {"error": "Invalid rev id"}, error_code="RevisionNotFound")
        if api and api["kind"] == "revision":
            return self._json(200, self._revision(repo))
        if api:
            return self._json(200, self._tree(repo, api["path"] or ""))
        if file_path not in repo.files:
            return self._json(404, {"error": "Entry not found"}, error_code="EntryNotFound", commit=repo.commit)
        self._file(method, repo, file_path)

    def _revision(self, repo: FakeRepo) -> dict[str, Any]:
        siblings = []
        for path in sorted(repo.files):
            meta = self.owner.metadata(repo, path)
            sibling = {"rfilename": path, "size": meta["size"], "blobId": meta["blob_id"]}
            if meta["sha256"]:
                sibling["lfs"] = {"size": meta["size"], "sha256": meta["sha256"], "pointerSize": POINTER_SIZE}
            siblings.append(sibling)
        return {"id": repo.repo_id, "modelId": repo.repo_id, "sha": repo.commit, "private": False, "siblings": siblings}

    def _tree(self, repo: FakeRepo, prefix: str) -> list[dict[str, Any]]:
        entries = []
        for path in sorted(p for p in repo.files if p.startswith(prefix)):
            meta = self.owner.metadata(repo, path)
            entry = {"type": "file", "path": path, "size": meta["size"], "oid": meta["blob_id"]}
            if meta["sha256"]:
                entry["lfs"] = {"oid": meta["sha256"], "size": meta["size"], "pointerSize": POINTER_SIZE}
            entries.append(entry)
        return entries

    def _file(self, method: str, repo: FakeRepo, path: str) -> None:
        hub, meta = self.owner, self.owner.metadata(repo, path)
        data = hub.served_bytes(repo, path)
        etag = meta["sha256"] or meta["blob_id"]
        start = int(m[1]) if (m := re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")) else 0
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Accept-Ranges", "bytes")
        if meta["sha256"]:
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(meta["size"]))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if method == "HEAD":
            return
        self._send_body(repo, path, data, start)

    def _send_body(self, repo: FakeRepo, path: str, data: bytes, start: int) -> None:
        hub, key = self.owner, (repo.repo_id, path)
        with hub.lock:
            cut_at = hub.cut.pop(key, None) if start == 0 else None
        held = hub.hold.get(key)
        try:
            if cut_at is not None:  # a dropped connection: part of the body, then the socket closes
                self.wfile.write(data[:cut_at])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if held is not None:
                kept_back = max(len(data) - HOLD_TAIL, start)
                self.wfile.write(data[start:kept_back])
                self.wfile.flush()
                held.wait(HOLD_TIMEOUT_S)
                start = kept_back
            self.wfile.write(data[start:])
        except (BrokenPipeError, ConnectionResetError):  # the client went away (a cancelled download)
            self.close_connection = True

    def _json(self, status: int, body: Any, error_code: str | None = None, commit: str | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if error_code:
            self.send_header("X-Error-Code", error_code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
