"""A second real ComfyUI for the load, soak and fault tests: small endpoint limits, the session server's tiny models
(linked, not rebuilt), and a test-only Gate node that holds a prompt at a chosen point until the test opens it.

A gate makes "while a job is queued / at this phase" deterministic: the test waits for the gate's `reached` file,
acts, then opens it (or interrupts the prompt, which the gate obeys like any node that checks for Cancel).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from support.comfy_server import GC_FREEZE_SOURCE, ComfyServer

GATE_FOLDER = "longcat_test_gate"
GATE_WAIT_S = 600  # only a hung server keeps a gate unreached this long; the test then fails with this message
LIMITS = {  # small bounds, so a test reaches them with a few tiny jobs
    "LONGCAT_AVATAR_MAX_JOBS": "3",
    "LONGCAT_AVATAR_MAX_RECORD_KB": "1",  # a record is 150-250 bytes as JSON: a handful fit
    "LONGCAT_AVATAR_RECORD_TTL_S": "10",  # long enough for a test to read a record it waits for
}

_GATE_NODE = '''
import os
import time

import comfy.model_management


class AnyType(str):
    """A socket type that connects to every other (ComfyUI compares types with !=)."""

    def __ne__(self, other):
        return False


ANY = AnyType("*")


class LongCatTestGate:
    """Passes its value through once <path>.open exists; writes <path>.reached when it starts waiting. The after_N
    inputs only make it wait for more nodes, so it runs once everything a node needs is ready."""

    @classmethod
    def INPUT_TYPES(cls):
        optional = {"value": (ANY,), **{f"after_{n}": (ANY,) for n in range(8)}}
        return {"required": {"path": ("STRING", {})}, "optional": optional}

    RETURN_TYPES = (ANY,)
    FUNCTION = "wait"
    OUTPUT_NODE = True
    CATEGORY = "testing"

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")  # never served from the cache: every prompt waits at its gate

    def wait(self, path, value=None, **after):
        open(path + ".reached", "w").close()
        while not os.path.exists(path + ".open"):
            comfy.model_management.throw_exception_if_processing_interrupted()
            time.sleep(0.05)
        return (value,)


NODE_CLASS_MAPPINGS = {"LongCatTestGate": LongCatTestGate}
'''
GATE_SOURCE = _GATE_NODE + GC_FREEZE_SOURCE  # the gate's custom node folder (__init__.py)


class Gate:
    """One gate: its API node, and the files that say it was reached and open it."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / uuid.uuid4().hex

    def node(self, value: list[Any] | None = None, after: Sequence[list[Any]] = ()) -> dict[str, Any]:
        """The API-format node, passing `value` ([node id, output index]) through once the `after` links are ready."""
        inputs: dict[str, Any] = {"path": str(self.path), **{f"after_{n}": link for n, link in enumerate(after)}}
        if value is not None:
            inputs["value"] = value
        return {"class_type": "LongCatTestGate", "inputs": inputs}

    def wait_reached(self) -> None:
        """Block until a prompt waits at this gate."""
        deadline = time.monotonic() + GATE_WAIT_S
        while not self.path.with_suffix(".reached").exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"no prompt reached gate {self.path.name} within {GATE_WAIT_S}s")
            time.sleep(0.05)

    def open(self) -> None:
        """Let the prompt waiting here (or arriving later) go on."""
        self.path.with_suffix(".open").touch()


def insert_gate(prompt: dict[str, Any], before_class: str, gate: Gate) -> dict[str, Any]:
    """A copy of `prompt` where the node of class `before_class` waits at `gate`: its first linked input passes
    through the gate, which itself waits for all the node's other inputs (so everything before the node has run)."""
    prompt = {node_id: {**node, "inputs": dict(node["inputs"])} for node_id, node in prompt.items()}
    target = next(node for node in prompt.values() if node["class_type"] == before_class)
    links = [(k, v) for k, v in target["inputs"].items() if isinstance(v, list) and len(v) == 2]
    gate_id = f"gate-{gate.path.name[:8]}"
    prompt[gate_id] = gate.node(links[0][1], after=[link for _, link in links[1:]])
    target["inputs"][links[0][0]] = [gate_id, 0]
    return prompt


@contextlib.contextmanager
def _limits_env() -> Iterator[None]:
    """os.environ with LIMITS while a server starts (it copies the environment)."""
    saved = {key: os.environ.get(key) for key in LIMITS}
    os.environ.update(LIMITS)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_gated_server(base: Path, models_dir: Path) -> ComfyServer:
    """A server in `base` with the gate node, LIMITS and `models_dir` (linked)."""
    gate = base / "custom_nodes" / GATE_FOLDER
    gate.mkdir(parents=True, exist_ok=True)
    (gate / "__init__.py").write_text(GATE_SOURCE)
    if not (base / "models").exists():
        (base / "models").symlink_to(models_dir, target_is_directory=True)
    return restart(ComfyServer(base))


def restart(server: ComfyServer) -> ComfyServer:
    """Start (again) a stopped server, on the same base folder and port, with LIMITS."""
    with _limits_env():
        return server.start()


def server_pid(server: ComfyServer) -> int:
    """The server's process id (to read its memory from /proc)."""
    pid = server.pid
    assert pid is not None, "the server is not running"
    return pid


def resident_bytes(pid: int) -> int:
    """VmRSS of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    raise AssertionError(f"/proc/{pid}/status has no VmRSS line")
