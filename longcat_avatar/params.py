"""Generation parameters shared by the client, the command line, batch files and the HTTP endpoint, with their ranges."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace

MIN_STEPS, MAX_STEPS = 1, 100  # beyond 100 flow-matching steps nothing improves; 1 is the smallest meaningful run
RECOMMENDED_STEPS = (20, 50)  # the non-distilled models' useful range (the reference CLI default is 50)
DISTILL_STEPS = 8  # the v1.5 DMD LoRA is trained for exactly 8 steps
MIN_GUIDANCE, MAX_GUIDANCE = 1.0, 10.0  # 1.0 turns guidance off; above ~10 mouths and colours exaggerate
MIN_FPS, MAX_FPS = 15.0, 30.0  # the output frame rates Video Combine accepts
MAX_SEED = 2**64 - 1  # ComfyUI's seed widgets are unsigned 64-bit
RANDOM_SEED_BOUND = 2**32  # random seeds stay short enough to read back and type
VERSIONS = ("1.5", "1.0")
RESOLUTIONS = ("480p", "720p", "512x512")  # the model's two bucket tables, and a fixed small square
CUSTOM_SIZE = re.compile(r"^(\d{2,4})x(\d{2,4})$")  # WIDTHxHEIGHT, e.g. 832x480
SIZE_MULTIPLE, MIN_SIZE, MAX_SIZE = 16, 32, 2048  # VAE 8x times 2x2 patches; 2048 is far beyond the 720p buckets
DISTILLED = ("auto", "on", "off")  # the sampler's modes: on = the v1.5 8-step LoRA schedule without guidance


@dataclass(frozen=True)
class GenerationParams:
    """What one generation may set; None keeps the workflow's own value (seed None: a random one)."""

    steps: int | None = None
    guidance: float | None = None  # the AUDIO guidance scale ("guidance" in the CLI, batch files and HTTP API)
    text_guidance: float | None = None
    fps: float | None = None
    seed: int | None = None
    version: str = "1.5"
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
    _check_range(problems, "steps", params.steps, MIN_STEPS, MAX_STEPS, integer=True)
    _check_range(problems, "guidance", params.guidance, MIN_GUIDANCE, MAX_GUIDANCE, integer=False)
    _check_range(problems, "text guidance", params.text_guidance, MIN_GUIDANCE, MAX_GUIDANCE, integer=False)
    _check_range(problems, "fps", params.fps, MIN_FPS, MAX_FPS, integer=False)
    _check_range(problems, "seed", params.seed, 0, MAX_SEED, integer=True)
    if params.version not in VERSIONS:
        problems.append(f"version must be one of {', '.join(VERSIONS)}, got {params.version!r}")
    if params.resolution is not None and params.resolution not in RESOLUTIONS:
        problems += _custom_size_problems(params.resolution)
    if params.distilled is not None and params.distilled not in DISTILLED:
        problems.append(f"distilled must be one of {', '.join(DISTILLED)}, got {params.distilled!r}")
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
    if any(v % SIZE_MULTIPLE or not MIN_SIZE <= v <= MAX_SIZE for v in size):
        return [f"resolution {resolution}: width and height must be multiples of {SIZE_MULTIPLE} between {MIN_SIZE} "
                f"and {MAX_SIZE}"]  # fmt: skip
    return []


def warnings_for(params: GenerationParams) -> list[str]:
    """Advice that does not stop a run (steps outside the recommended range)."""
    low, high = RECOMMENDED_STEPS
    if params.steps is None or low <= params.steps <= high or params.steps == DISTILL_STEPS:
        return []
    return [
        f"steps {params.steps} is outside the recommended {low}-{high} (or exactly {DISTILL_STEPS} with the v1.5 "
        "distillation LoRA): fewer steps blur, more only cost time"
    ]
