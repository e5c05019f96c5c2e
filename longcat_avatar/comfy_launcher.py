"""Start a headless ComfyUI with this pack installed, wait until it answers, stop it.

The server gets its own base directory (a new temporary one by default, deleted when it stops) whose `custom_nodes/`
holds a link to this pack (a copy where links are not allowed), so the user's ComfyUI folders and database stay
untouched. The command line, the self-test, the workflow tools and the tests start their servers here.

    with ComfyLauncher(find_comfyui(), extra_args=["--cpu"]) as server:
        print(server.url)
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from .errors import AvatarError

PACK_ROOT = Path(__file__).resolve().parents[1]
READY_ROUTE = "/system_stats"  # answers once ComfyUI has loaded its nodes and listens; it also echoes the argv
DEFAULT_READY_TIMEOUT_S = 180.0  # cold imports of torch and ComfyUI take ~10 s; slow disks and antivirus scanners more
POLL_INTERVAL_S = 0.25  # start-up takes seconds: four polls a second notice readiness without busy waiting
STOP_TIMEOUT_S = 20.0  # ComfyUI stops within a second on SIGTERM; kill it when it does not
# The pack never downloads; these keep transformers and huggingface_hub from trying inside a test or self-test.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
COPY_IGNORE = (".git", "tests", "__pycache__")  # what a copied pack leaves out
# A port found free may be taken by another program before ComfyUI binds it; ComfyUI then exits with asyncio's
# create_server error (this text on every platform), and a launcher that chose the port tries another one.
PORT_TAKEN = "error while attempting to bind on address"
PORT_ATTEMPTS = 3  # two programs grabbing our port in a row already needs a very busy machine


class ComfyLaunchError(AvatarError):
    """ComfyUI could not be started (no main.py, it exited, or it did not answer in time)."""


def find_comfyui(explicit: str | Path | None = None) -> Path | None:
    """The ComfyUI folder: `explicit`, else $COMFYUI_DIR, else the one whose custom_nodes holds this pack."""
    for candidate in (explicit, os.environ.get("COMFYUI_DIR")):
        if candidate:
            return Path(candidate).expanduser().resolve()
    if PACK_ROOT.parent.name == "custom_nodes" and (PACK_ROOT.parent.parent / "main.py").is_file():
        return PACK_ROOT.parent.parent
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ComfyLauncher:
    """One ComfyUI process with its own base directory; a context manager that stops it."""

    def __init__(
        self,
        comfyui_dir: str | Path,
        *,
        base_dir: str | Path | None = None,
        python: str = sys.executable,
        host: str = "127.0.0.1",
        port: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
        log_file: str | Path | None = None,
        pack_folder_name: str | None = None,
        stop_on_exit: bool = True,
        models_from: str | Path | None = None,
    ) -> None:
        """Settings only; `start()` starts. base_dir None: a temporary folder, deleted by `stop()`; port None: free;
        models_from: a models folder the server reads (linked as its models/, e.g. the ComfyUI folder's own)."""
        self.comfyui_dir = Path(comfyui_dir)
        self._owns_base = base_dir is None
        base = Path(base_dir) if base_dir is not None else Path(tempfile.mkdtemp(prefix="longcat-comfy-"))
        self.base_dir = base.resolve()  # absolute: ComfyUI runs in its own folder
        self.python, self.host, self.port = python, host, port or free_port(host)
        self._port_chosen_here = port is None
        self.extra_args, self.env = list(extra_args), dict(env or {})
        self.ready_timeout_s, self.stop_on_exit = ready_timeout_s, stop_on_exit
        self.log_path = Path(log_file) if log_file is not None else self.base_dir / "comfyui.log"
        self.pack_folder_name = pack_folder_name or PACK_ROOT.name
        self.models_from = Path(models_from).resolve() if models_from is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # listening everywhere: ask locally
        return f"http://{host}:{self.port}"

    @property
    def models_dir(self) -> Path:
        """The models folder the server reads (callers may fill it, also while it runs)."""
        return self.base_dir / "models"

    @property
    def input_dir(self) -> Path:
        """The server's input folder."""
        return self.base_dir / "input"

    @property
    def output_dir(self) -> Path:
        """The server's output folder."""
        return self.base_dir / "output"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (None when stopped)."""
        return self._process.pid if self.running else None

    @property
    def running(self) -> bool:
        """True while the process lives."""
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The command line that starts the server."""
        command = [self.python, "main.py", "--listen", self.host, "--port", str(self.port),
                   "--base-directory", str(self.base_dir), "--disable-auto-launch"]  # fmt: skip
        if "--database-url" not in self.extra_args and self._supports("--database-url"):
            command += ["--database-url", "sqlite:///:memory:"]  # the default database lives in ComfyUI's own folder
        return command + self.extra_args

    def start(self) -> ComfyLauncher:
        """Install the pack in the base directory, start ComfyUI, wait until it answers; raises ComfyLaunchError."""
        if not (self.comfyui_dir / "main.py").is_file():
            raise ComfyLaunchError(f"ComfyUI's main.py is not in {self.comfyui_dir}: pass the ComfyUI folder")
        self._prepare_base_dir()
        if self.stop_on_exit:
            atexit.register(self.stop)
        try:
            self._start_on_a_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_on_a_free_port(self) -> None:
        """Start and wait until it answers; on a port taken meanwhile, again on another (when the port is ours)."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._spawn()
            try:
                self._wait_ready()
                return
            except ComfyLaunchError:
                if not (self._port_chosen_here and attempt < PORT_ATTEMPTS and PORT_TAKEN in self.log_text()):
                    raise
                self._terminate()
                self.port = free_port(self.host)

    def _spawn(self) -> None:
        """Start the ComfyUI process, its output going to the log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._process = subprocess.Popen(
            self.command(), cwd=self.comfyui_dir, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop in time); delete a temporary base directory."""
        self._terminate()
        atexit.unregister(self.stop)
        if self._owns_base:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _terminate(self) -> None:
        """Terminate the process (kill it if it does not stop in time) and close the log."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=STOP_TIMEOUT_S)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        """The whole server log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> ComfyLauncher:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _supports(self, option: str) -> bool:
        """Whether this ComfyUI knows a command-line option (older versions lack e.g. --database-url)."""
        cli_args = self.comfyui_dir / "comfy" / "cli_args.py"
        return cli_args.is_file() and option in cli_args.read_text(errors="replace")

    def _prepare_base_dir(self) -> None:
        """models/ (or a link to `models_from`), input/, output/, user/ and custom_nodes/<pack> (a link; a copy where
        links are not allowed)."""
        models = self.base_dir / "models"
        if self.models_from is not None and not (models.exists() or models.is_symlink()):
            models.symlink_to(self.models_from, target_is_directory=True)
        for sub in ("models", "input", "output", "user", "custom_nodes"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        target = self.base_dir / "custom_nodes" / self.pack_folder_name
        if target.exists() or target.is_symlink():
            return
        try:
            target.symlink_to(PACK_ROOT, target_is_directory=True)
        except OSError:  # e.g. Windows without developer mode
            shutil.copytree(PACK_ROOT, target, ignore=shutil.ignore_patterns(*COPY_IGNORE))

    def _wait_ready(self) -> None:
        """Poll until this very process answers (its argv names our base directory), exits, or the time is up."""
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise ComfyLaunchError(f"ComfyUI exited with code {code} while starting:\n{self.log_tail()}")
            if self._answers():
                return
            time.sleep(POLL_INTERVAL_S)
        raise ComfyLaunchError(f"ComfyUI did not answer within {self.ready_timeout_s:g} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        """True when the server on our port is ours and answers."""
        try:
            with urllib.request.urlopen(self.url + READY_ROUTE, timeout=2) as response:
                stats = json.load(response)
        except (OSError, ValueError):
            return False
        return str(self.base_dir) in stats.get("system", {}).get("argv", [])
