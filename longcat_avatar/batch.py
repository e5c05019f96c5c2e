"""Batch files: a JSON list of jobs (referenceImage, audio, output, numInferenceSteps, guidanceScale, fps, seed, ...)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import AvatarGenerator, GenerationResult, Inputs, read_media
from .errors import AvatarError, InvalidParametersError, ServerUnavailableError
from .interruptible import run_interruptibly
from .params import GenerationParams, validate

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
# Batch key -> GenerationParams field. Paths are resolved relative to the batch file's folder.
PARAM_KEYS = {
    "numInferenceSteps": "steps",
    "guidanceScale": "guidance",
    "textGuidanceScale": "text_guidance",
    "fps": "fps",
    "seed": "seed",
    "version": "version",
    "resolution": "resolution",
    "prompt": "prompt",
    "distilled": "distilled",
    "separateVocals": "separate_vocals",
}
PATH_KEYS = ("referenceImage", "audio", "output")
REQUIRED_KEYS = PATH_KEYS


@dataclass
class Job:
    """One validated (or refused) job of a batch file."""

    number: int  # 1-based position in the file
    image: Path | None
    audio: Path | None
    output: Path | None
    params: GenerationParams
    problems: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What happened to one job: ok, failed (while running) or invalid (never started)."""

    job: Job
    status: str
    message: str = ""
    seconds: float = 0.0
    result: GenerationResult | None = None


def template() -> list[dict[str, Any]]:
    """The batch file written by `create-config`: two jobs on the bundled examples, every key shown."""
    portrait, speech = str(EXAMPLES_DIR / "portrait.png"), str(EXAMPLES_DIR / "speech.wav")
    return [
        {
            "_comment": "Required: referenceImage, audio, output (relative paths start at this file's folder). "
            "Optional: numInferenceSteps 1-100 (20-50 recommended), guidanceScale (audio) 1.0-10.0, "
            "textGuidanceScale 1.0-10.0, fps 15-30, seed (random when absent), version 1.5|1.0, "
            "resolution 480p|720p|512x512, prompt, distilled auto|on|off, separateVocals true|false. Keys starting "
            "with _ are ignored.",
            "referenceImage": portrait,
            "audio": speech,
            "output": "outputs/example_1.mp4",
            "numInferenceSteps": 30,
            "guidanceScale": 4.0,
            "fps": 25,
            "seed": 42,
        },
        {"referenceImage": portrait, "audio": speech, "output": "outputs/example_2.mp4", "fps": 16},
    ]


def write_template(path: Path, force: bool = False) -> None:
    """Write the template; refuses to overwrite an existing file unless `force`."""
    if path.exists() and not force:
        raise InvalidParametersError([f"{path} already exists (use --force to overwrite it)"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(template(), indent=2) + "\n", encoding="utf-8")


def read_batch(path: Path) -> list[Any]:
    """The job list of a batch file (a JSON list, or {"jobs": [...]})."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InvalidParametersError([f"batch file {path} does not exist (create one with create-config)"]) from error
    except ValueError as error:
        raise InvalidParametersError([f"batch file {path} is not valid JSON: {error}"]) from error
    jobs = data.get("jobs") if isinstance(data, dict) else data
    if not isinstance(jobs, list) or not jobs:
        raise InvalidParametersError([f"batch file {path} must hold a non-empty JSON list of jobs"])
    return jobs


def parse_job(number: int, entry: Any, base: Path) -> Job:
    """One job from its JSON object, with every problem found (unknown keys, missing keys, ranges, files)."""
    if not isinstance(entry, dict):
        return Job(number, None, None, None, GenerationParams(), [f"job {number} is not a JSON object"])
    problems = [f"unknown key '{key}'{_suggest(key)}" for key in entry if not _known(key)]
    problems += [f"missing '{key}'" for key in REQUIRED_KEYS if not entry.get(key)]
    paths = {key: (base / str(entry[key])).expanduser() if entry.get(key) else None for key in PATH_KEYS}
    values = {field_name: entry[key] for key, field_name in PARAM_KEYS.items() if entry.get(key) is not None}
    try:
        params = GenerationParams(**values)
    except TypeError as error:  # pragma: no cover - keys are mapped one to one
        return Job(number, None, None, None, GenerationParams(), [str(error)])
    problems += validate(params)
    for key, kind in (("referenceImage", "image"), ("audio", "audio")):
        if paths[key] is not None:
            try:
                read_media(paths[key], kind)
            except InvalidParametersError as error:
                problems += error.problems
    return Job(number, paths["referenceImage"], paths["audio"], paths["output"], params, problems)


def load_jobs(path: Path) -> list[Job]:
    """Every job of a batch file, validated before anything runs (two jobs may not write the same output)."""
    base = path.resolve().parent
    jobs = [parse_job(number, entry, base) for number, entry in enumerate(read_batch(path), start=1)]
    seen: dict[Path, int] = {}
    for job in jobs:
        if job.output is not None:
            resolved = job.output.resolve()
            if resolved in seen:
                job.problems.append(f"output {job.output} is also written by job {seen[resolved]}")
            seen.setdefault(resolved, job.number)
    return jobs


def run_jobs(
    generator: AvatarGenerator,
    jobs: list[Job],
    on_start: Callable[[Job], Any] | None = None,
    stop_on_server_down: bool = True,
) -> list[Outcome]:
    """Run the valid jobs one after another; a failing job is recorded and the batch goes on."""
    outcomes: list[Outcome] = []
    for job in jobs:
        if job.problems:
            outcomes.append(Outcome(job, "invalid", "; ".join(job.problems)))
            continue
        progress = on_start(job) if on_start is not None else None
        started = time.monotonic()
        try:
            inputs = Inputs(job.image, audio=job.audio)  # type: ignore[arg-type]
            result = run_interruptibly(generator.arun(inputs, job.params, job.output, progress))  # type: ignore[arg-type]
            outcomes.append(Outcome(job, "ok", str(result.output), time.monotonic() - started, result))
        except AvatarError as error:
            outcomes.append(Outcome(job, "failed", str(error), time.monotonic() - started))
            if stop_on_server_down and isinstance(error, ServerUnavailableError):
                outcomes += [Outcome(j, "skipped", "the server is down") for j in jobs[len(outcomes) :]]
                break
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    """A plain-text table of the outcomes and the totals."""
    lines = ["", "Batch summary:"]
    for outcome in outcomes:
        target = outcome.job.output or "?"
        detail = f" ({outcome.seconds:.1f} s)" if outcome.status == "ok" else f": {outcome.message}"
        lines.append(f"  job {outcome.job.number}: {outcome.status:<7} {target}{detail}")
    counts = {status: sum(o.status == status for o in outcomes) for status in ("ok", "failed", "invalid", "skipped")}
    lines.append("  " + ", ".join(f"{count} {status}" for status, count in counts.items() if count or status == "ok"))
    return "\n".join(lines)


def _known(key: str) -> bool:
    return key.startswith("_") or key in PARAM_KEYS or key in PATH_KEYS


def _suggest(key: str) -> str:
    """' (did you mean X?)' for a near miss of a known key."""
    import difflib

    close = difflib.get_close_matches(key, [*PARAM_KEYS, *PATH_KEYS], n=1, cutoff=0.6)  # 0.6: difflib's own default
    return f" (did you mean '{close[0]}'?)" if close else ""
