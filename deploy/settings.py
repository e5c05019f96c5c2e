"""The settings of a deployment, defined once: the Serve application's arguments (serve_config.yaml `args`, or
`serve run deploy.serve_app:build_app key=value`) and the Modal app read them from here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longcat_avatar.shared import limits

ROUTE = "/longcat/avatar"  # the pack's endpoint (routes/avatar.py); the deployment answers on the same path
DEFAULT_REPLICAS = 1  # one per GPU: start with one and raise it to the GPUs the cluster has
DEFAULT_MAX_JOBS = 8  # running + queued across the app: a GPU renders one at a time, so beyond this clients wait long
DEFAULT_JOB_TIMEOUT_S = 1800.0  # half an hour of rendering per job (a minute of 720p video on an A100, with headroom)
DEFAULT_RETRY_AFTER_S = 30  # what a refused client is told to wait: a short generation takes tens of seconds
DEFAULT_RECORD_TTL_S = 3600.0  # an hour to fetch a finished job's result before its record is dropped
DEFAULT_HEALTH_PERIOD_S = 10.0  # Serve's own default: a dead ComfyUI is noticed within this
DEFAULT_START_TIMEOUT_S = 900.0  # ComfyUI's start plus the warm-up that loads the weights (minutes from a slow disk)
DEFAULT_REQUEUE_WAIT_S = 600.0  # how long a job waits for a healthy replica when the one it met had lost its ComfyUI
# The warm-up only loads the weights: two of the smallest frames' sides (one 2x2 latent patch is the least accepted).
DEFAULT_WARMUP_RESOLUTION = f"{2 * limits.MIN_SIZE}x{2 * limits.MIN_SIZE}"
LOST_JOB_RETRIES = 1  # a job whose replica died mid-render runs once more elsewhere, then it is reported failed


@dataclass(frozen=True)
class ServeSettings:
    """Where ComfyUI and the weights are, how many replicas, and the bounds the ingress enforces."""

    comfyui_dir: str = ""  # empty: $COMFYUI_DIR or the ComfyUI this pack is installed in (comfy_launcher.find_comfyui)
    models_dir: str = ""  # the weights folder every replica's ComfyUI reads (linked as its models/); empty: ComfyUI's
    replicas: int = DEFAULT_REPLICAS
    gpus_per_replica: float = 1.0  # 0 runs ComfyUI on the CPU (tests, tiny models)
    max_jobs: int = DEFAULT_MAX_JOBS
    job_timeout_s: float = DEFAULT_JOB_TIMEOUT_S
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    record_ttl_s: float = DEFAULT_RECORD_TTL_S
    health_period_s: float = DEFAULT_HEALTH_PERIOD_S
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    requeue_wait_s: float = DEFAULT_REQUEUE_WAIT_S
    warmup: bool = True
    warmup_resolution: str = DEFAULT_WARMUP_RESOLUTION
    state_dir: str = ""  # when set, each replica writes <replica>.json there: its ComfyUI's URL, pid and log
    extra_custom_nodes: tuple[str, ...] = ()  # other node folders linked into each ComfyUI's custom_nodes
    comfy_env: tuple[tuple[str, str], ...] = ()  # environment of each ComfyUI (e.g. the pack's LONGCAT_AVATAR_* limits)

    @classmethod
    def from_args(cls, args: dict[str, Any] | None) -> ServeSettings:
        """Settings from the application's arguments (strings from the command line, or typed from YAML)."""
        args = dict(args or {})
        known = {item.name: item for item in dataclasses.fields(cls)}
        unknown = sorted(set(args) - set(known))
        if unknown:
            raise ValueError(f"unknown deployment argument(s) {unknown}; known: {sorted(known)}")
        values = {name: _convert(known[name].type, value) for name, value in args.items()}
        settings = cls(**values)
        problems = settings.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return settings

    def problems(self) -> list[str]:
        """What is wrong with these settings (empty when they can run)."""
        problems = []
        if self.replicas < 1:
            problems.append(f"replicas must be at least 1, got {self.replicas}")
        if self.max_jobs < self.replicas:
            problems.append(f"max_jobs ({self.max_jobs}) must be at least replicas ({self.replicas})")
        if self.models_dir and not Path(self.models_dir).is_dir():
            problems.append(f"models_dir {self.models_dir} is not a folder: point it at the weights folder")
        return problems

    def as_args(self) -> dict[str, Any]:
        """The settings as the plain values a Serve config carries (lists for tuples)."""
        return {key: list(map(list, value)) if key == "comfy_env" else list(value) if isinstance(value, tuple)
                else value for key, value in dataclasses.asdict(self).items()}  # fmt: skip


def _convert(kind: Any, value: Any) -> Any:
    """A value from YAML or the command line as the field's type."""
    kind = str(kind)
    if kind == "bool" and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if kind in ("int", "float"):
        return {"int": int, "float": float}[kind](value)
    if kind.startswith("tuple[tuple"):
        pairs = value.items() if isinstance(value, dict) else value
        return tuple((str(key), str(item)) for key, item in pairs)
    if kind.startswith("tuple"):
        return tuple(str(item) for item in ([value] if isinstance(value, str) else value))
    return value
