"""Generation parameters shared by the client, the command line, batch files and the HTTP endpoint, with their ranges."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace

from .shared import limits, versions
from .shared import resolution as sizes
from .shared import sampling as sampling_modes

RANDOM_SEED_BOUND = 2**32  # random seeds stay short enough to read back and type
VERSIONS = tuple(name.removeprefix("v") for name in sorted(versions.VERSIONS, reverse=True))  # newest (default) first
RESOLUTIONS = tuple(mode for mode in sizes.RESOLUTION_MODES if mode != sizes.CUSTOM_MODE)  # the named sizes
CUSTOM_SIZE = re.compile(r"^(\d{2,4})x(\d{2,4})$")  # WIDTHxHEIGHT, e.g. 832x480
DISTILLED = sampling_modes.DISTILLED_CHOICES  # the sampler's modes (the engine decides what each one runs)


@dataclass(frozen=True)
class GenerationParams:
    """What one generation may set; None keeps the workflow's own value (seed None: a random one)."""

    steps: int | None = None
    guidance: float | None = None  # the AUDIO guidance scale ("guidance" in the CLI, batch files and HTTP API)
    text_guidance: float | None = None
    fps: float | None = None
    seed: int | None = None
    version: str = VERSIONS[0]
    resolution: str | None = None
    prompt: str | None = None
    distilled: str | None = None
    separate_vocals: bool | None = None  # features from the separated vocals (the video keeps the original audio)

    def with_seed(self) -> GenerationParams:
        """A copy whose seed is fixed (drawn at random when it was None)."""
        return self if self.seed is not None else replace(self, seed=secrets.randbelow(RANDOM_SEED_BOUND))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_range(problems: list[str], name: str, value: object, low: float, high: float, integer: bool) -> None:
    if value is None:
        return
    if not _is_number(value) or (integer and not float(value).is_integer()):  # type: ignore[arg-type]
        problems.append(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    elif not low <= value <= high:  # type: ignore[operator]
        problems.append(f"{name} must be between {low:g} and {high:g}, got {value:g}")


def validate(params: GenerationParams) -> list[str]:
    """Every problem with `params` as a readable sentence; an empty list means valid."""
    problems: list[str] = []
    _check_range(problems, "steps", params.steps, limits.MIN_STEPS, limits.MAX_STEPS, integer=True)
    _check_range(problems, "guidance", params.guidance, limits.MIN_GUIDANCE, limits.MAX_GUIDANCE, integer=False)
    _check_range(
        problems, "text guidance", params.text_guidance, limits.MIN_GUIDANCE, limits.MAX_GUIDANCE, integer=False
    )
    _check_range(problems, "fps", params.fps, limits.MIN_FPS, limits.MAX_FPS, integer=False)
    _check_range(problems, "seed", params.seed, 0, limits.MAX_SEED, integer=True)
    if params.version not in VERSIONS:
        problems.append(f"version must be one of {', '.join(VERSIONS)}, got {params.version!r}")
    if params.resolution is not None and params.resolution not in RESOLUTIONS:
        problems += _custom_size_problems(params.resolution)
    if params.distilled is not None:
        problem = sampling_modes.distilled_problem(
            params.version if params.version in VERSIONS else VERSIONS[0], params.distilled
        )
        problems += [problem] if problem else []
    if params.prompt is not None and not isinstance(params.prompt, str):
        problems.append(f"prompt must be text, got {params.prompt!r}")
    if params.separate_vocals is not None and not isinstance(params.separate_vocals, bool):
        problems.append(f"separate_vocals must be true or false, got {params.separate_vocals!r}")
    return problems


def custom_size(resolution: str) -> tuple[int, int] | None:
    """(width, height) of a WIDTHxHEIGHT resolution, or None for a named one."""
    match = CUSTOM_SIZE.match(resolution) if resolution not in RESOLUTIONS else None
    return (int(match[1]), int(match[2])) if match else None


def _custom_size_problems(resolution: object) -> list[str]:
    size = custom_size(resolution) if isinstance(resolution, str) else None
    named = ", ".join(RESOLUTIONS)
    if size is None:
        return [f"resolution must be one of {named} or WIDTHxHEIGHT (e.g. 832x480), got {resolution!r}"]
    if any(v % limits.SIZE_MULTIPLE or not limits.MIN_SIZE <= v <= limits.MAX_SIZE for v in size):
        return [f"resolution {resolution}: width and height must be multiples of {limits.SIZE_MULTIPLE} between "
                f"{limits.MIN_SIZE} and {limits.MAX_SIZE}"]  # fmt: skip
    return []


def warnings_for(params: GenerationParams) -> list[str]:
    """Advice that does not stop a run (steps outside the recommended range)."""
    low, high = limits.RECOMMENDED_STEPS
    spec = versions.get_version(versions.normalize_version(params.version) or versions.LATEST)
    if params.steps is None or low <= params.steps <= high or params.steps == spec.distill_steps:
        return []
    distilled = f" (or exactly {spec.distill_steps} with the {spec.version} distillation LoRA)"
    return [
        f"steps {params.steps} is outside the recommended {low}-{high}{distilled if spec.distill_steps else ''}: "
        "fewer steps blur, more only cost time"
    ]
