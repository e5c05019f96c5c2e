"""One replica's ComfyUI: started with the pack's launcher, warmed up with one tiny job, asked to render a job through
its own POST /longcat/avatar, checked for health and stopped. Used by the Ray Serve replica and the Modal class."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import requests

from longcat_avatar.comfy_launcher import OFFLINE_ENV, PACK_ROOT, ComfyLauncher, ComfyLaunchError, find_comfyui

from .settings import ROUTE, ServeSettings

EXAMPLES = PACK_ROOT / "examples"  # the portrait and speech shipped with the pack: the warm-up's inputs
HEALTH_TIMEOUT_S = 10.0  # /system_stats answers in milliseconds; a ComfyUI that takes this long is hung
# After ComfyUI's own wait limit ends a job it still waits up to routes/limits.py CANCEL_GRACE_S (30 s) for the
# cancelled prompt to stop; this covers that and the transfer of the answer.
ANSWER_MARGIN_S = 120.0
INTERRUPT_TIMEOUT_S = 30.0  # /interrupt and /queue answer at once; only a hung server takes this long


class ChildLostError(RuntimeError):
    """The replica's ComfyUI exited or stopped answering: the job it held is lost with it."""


class ComfyChild:
    """A headless ComfyUI owned by one replica, with the weights folder and extra custom nodes linked in."""

    def __init__(self, settings: ServeSettings, name: str) -> None:
        """Settings only; `start()` starts. `name` labels the replica in logs and in the state file."""
        comfyui = find_comfyui(settings.comfyui_dir or None)
        if comfyui is None:
            raise ComfyLaunchError("ComfyUI not found: set the deployment's comfyui_dir or $COMFYUI_DIR")
        self.settings, self.name = settings, name
        args = ["--cpu"] if settings.gpus_per_replica == 0 else []
        env = OFFLINE_ENV | dict(settings.comfy_env)
        self.launcher = ComfyLauncher(
            comfyui, extra_args=args, env=env, ready_timeout_s=settings.start_timeout_s, stop_on_exit=True
        )
        self.state_file = Path(settings.state_dir) / f"{name}.json" if settings.state_dir else None

    def start(self) -> ComfyChild:
        """Link the weights and custom nodes, start ComfyUI, warm it up, then write the state file."""
        base = self.launcher.base_dir
        models = Path(self.settings.models_dir or self.launcher.comfyui_dir / "models")  # default: ComfyUI's own
        base.mkdir(parents=True, exist_ok=True)
        (base / "models").symlink_to(models.resolve(), target_is_directory=True)
        for folder in map(Path, self.settings.extra_custom_nodes):
            (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
            (base / "custom_nodes" / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
        self.launcher.start()
        try:
            if self.settings.warmup:
                self.warm_up()
        except BaseException:  # a replica that fails to start must not leave its ComfyUI running
            self.launcher.stop()
            raise
        self._write_state()
        return self

    def warm_up(self) -> None:
        """One tiny job through the endpoint, so the weights are loaded before the first real job arrives."""
        status, body = self.render(warmup_body(self.settings.warmup_resolution), self.settings.start_timeout_s)
        if status != 200:
            raise ChildLostError(f"the warm-up job failed ({status}): {body.get('error')}\n{self.launcher.log_tail()}")

    def render(self, body: dict[str, Any], timeout_s: float) -> tuple[int, dict[str, Any]]:
        """POST the job to ComfyUI's own endpoint and wait for it (ComfyUI cancels it after `timeout_s`: 408)."""
        if not self.launcher.running:
            raise ChildLostError(f"ComfyUI of {self.name} is not running")
        forwarded = {**body, "wait": True, "wait_timeout_s": timeout_s}
        try:
            answer = requests.post(self.launcher.url + ROUTE, json=forwarded, timeout=timeout_s + ANSWER_MARGIN_S)
            return answer.status_code, _json(answer)
        except requests.RequestException as error:
            if not self.healthy():
                raise ChildLostError(f"ComfyUI of {self.name} died while rendering ({error})") from error
            raise

    def interrupt(self) -> None:
        """Drop every queued prompt and interrupt the running one: this ComfyUI serves only its replica's job."""
        requests.post(self.launcher.url + "/queue", json={"clear": True}, timeout=INTERRUPT_TIMEOUT_S)
        requests.post(self.launcher.url + "/interrupt", json={}, timeout=INTERRUPT_TIMEOUT_S)

    def healthy(self) -> bool:
        """True while the process lives and answers."""
        if not self.launcher.running:
            return False
        try:
            return requests.get(self.launcher.url + "/system_stats", timeout=HEALTH_TIMEOUT_S).ok
        except requests.RequestException:
            return False

    def problem(self) -> str | None:
        """Why this ComfyUI cannot serve (None when it can)."""
        if self.healthy():
            return None
        state = "does not answer" if self.launcher.running else "exited"
        return f"ComfyUI of {self.name} {state}; its log ends:\n{self.launcher.log_tail(20)}"

    def stop(self) -> None:
        """Stop ComfyUI and remove the state file."""
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)
        self.launcher.stop()

    def _write_state(self) -> None:
        """<state_dir>/<name>.json: where this replica's ComfyUI is (written once it is warm)."""
        if self.state_file is None:
            return
        state = {"replica": self.name, "url": self.launcher.url, "pid": self.launcher.pid, "ready_at": time.time(),
                 "base_dir": str(self.launcher.base_dir), "log": str(self.launcher.log_path)}  # fmt: skip
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_suffix(".part")
        partial.write_text(json.dumps(state))
        os.replace(partial, self.state_file)  # readers never see half a file


def warmup_body(resolution: str) -> dict[str, Any]:
    """The warm-up request: the pack's example portrait and speech, one step, the smallest frame. It loads the base
    weights; the vocal separator (67 MB) and a distillation LoRA load with the first job that asks for them."""
    return {
        "reference_image": base64.b64encode((EXAMPLES / "portrait.png").read_bytes()).decode("ascii"),
        "audio": base64.b64encode((EXAMPLES / "speech.wav").read_bytes()).decode("ascii"),
        "resolution": resolution,
        "num_inference_steps": 1,
        "distilled": "off",
        "separate_vocals": False,
    }


def _json(answer: requests.Response) -> dict[str, Any]:
    """The answer's JSON object, or its text as an error."""
    try:
        body = answer.json()
    except ValueError:
        return {"error": answer.text[:2000]}
    return body if isinstance(body, dict) else {"error": str(body)[:2000]}
