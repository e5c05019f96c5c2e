"""A local Ray cluster running the Serve application of deploy/ on the CPU with tiny models, and what the deployment
tests need to see inside it: each replica's ComfyUI (from the replicas' state files), gates that hold a ComfyUI's
worker (support/gated_server.py), and polls of the ingress and of the ComfyUIs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from support.avatar_requests import JOB_WAIT_S, POLL_S, ROUTE
from support.gated_server import GATE_FOLDER, GATE_SOURCE, Gate

# Start-up of two ComfyUIs with their warm-ups, or a replacement after a fault: seconds on a quiet machine, minutes on
# a busy 2-core one; only a broken deployment takes this long.
START_WAIT_S = 600
T = TypeVar("T")


@dataclass(frozen=True)
class ReplicaChild:
    """One replica's ComfyUI, as its state file tells."""

    replica: str
    url: str
    pid: int
    ready_at: float

    def load(self) -> dict[str, Any]:
        """This ComfyUI's GET /longcat/avatar (its own jobs)."""
        return requests.get(self.url + ROUTE, timeout=60).json()

    def hold(self, gates_dir: Path) -> Gate:
        """Queue a prompt that waits at a gate on this ComfyUI, so jobs sent to it wait until the gate opens."""
        gate = Gate(gates_dir)
        answer = requests.post(self.url + "/prompt", json={"prompt": {"1": gate.node()}}, timeout=60)
        answer.raise_for_status()
        gate.wait_reached()
        return gate


@dataclass(frozen=True)
class ServeApp:
    """The running application: its URL, and the folders its replicas and the tests' gates use."""

    url: str
    state_dir: Path
    gates_dir: Path

    def post(self, body: dict[str, Any]) -> requests.Response:
        """POST /longcat/avatar on the ingress."""
        return requests.post(self.url + ROUTE, json=body, timeout=JOB_WAIT_S)

    def wait_done(self, job_id: str) -> dict[str, Any]:
        """Poll a job on the ingress until it ended; its final record."""
        return poll(lambda: _ended(requests.get(f"{self.url}{ROUTE}/{job_id}", timeout=60)), JOB_WAIT_S, job_id)

    def wait_idle(self) -> None:
        """Wait until the ingress holds no queued or running job (an earlier test's may still be finishing)."""
        poll(lambda: self.load()["active_jobs"] == 0 or None, JOB_WAIT_S, "an idle deployment")

    def load(self) -> dict[str, Any]:
        """The ingress's GET /longcat/avatar: jobs held and limits."""
        return requests.get(self.url + ROUTE, timeout=60).json()

    def children(self) -> dict[str, ReplicaChild]:
        """The replicas whose ComfyUI is warm now, by replica name."""
        found = {}
        for path in self.state_dir.glob("*.json"):
            state = json.loads(path.read_text())
            found[state["replica"]] = ReplicaChild(state["replica"], state["url"], state["pid"], state["ready_at"])
        return found

    def wait_children(self, predicate: Callable[[dict[str, ReplicaChild]], bool]) -> dict[str, ReplicaChild]:
        """Wait until the warm replicas satisfy `predicate`; returns them."""
        return poll(lambda: (lambda now: now if predicate(now) else None)(self.children()), START_WAIT_S, "replicas")


def _ended(answer: requests.Response) -> dict[str, Any] | None:
    body = answer.json()
    return body if answer.status_code != 200 or body["status"] not in ("queued", "running") else None


def poll(read: Callable[[], T | None], deadline_s: float, what: str) -> T:
    """Call `read` until it returns something, within `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while (value := read()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not there after {deadline_s} s")
        time.sleep(POLL_S)
    return value


@contextmanager
def serve_app(comfyui_dir: Path, models_dir: Path, work: Path, replicas: int, max_jobs: int) -> Iterator[ServeApp]:
    """The application on a local Ray (deploy/local.py) with `replicas` CPU replicas, the gate node in each ComfyUI."""
    from deploy.local import local_app

    custom = work / "custom_nodes" / GATE_FOLDER
    custom.mkdir(parents=True, exist_ok=True)
    (custom / "__init__.py").write_text(GATE_SOURCE)
    args = {"comfyui_dir": str(comfyui_dir), "models_dir": str(models_dir), "replicas": replicas,
            "gpus_per_replica": 0, "max_jobs": max_jobs, "health_period_s": 1, "state_dir": str(work / "state"),
            "extra_custom_nodes": [str(custom)], "requeue_wait_s": START_WAIT_S}  # fmt: skip
    with local_app(args) as url:
        yield ServeApp(url, work / "state", work / "gates")
