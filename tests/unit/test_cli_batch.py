"""Batch files: the template, validation of every job before anything runs, and a summary of the outcomes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from longcat_avatar import batch
from longcat_avatar.client import AvatarGenerator
from longcat_avatar.comfy_launcher import free_port
from longcat_avatar.errors import InvalidParametersError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _write(path: Path, jobs: object) -> Path:
    path.write_text(json.dumps(jobs))
    return path


def test_template_is_valid_and_uses_every_documented_key(tmp_path: Path) -> None:
    config = tmp_path / "jobs.json"
    batch.write_template(config)
    entries = json.loads(config.read_text())
    assert {"referenceImage", "audio", "output", "numInferenceSteps", "guidanceScale", "fps", "seed"} <= set(entries[0])
    jobs = batch.load_jobs(config)
    assert [job.problems for job in jobs] == [[], []]
    first, second = jobs
    assert (first.params.steps, first.params.guidance, first.params.fps, first.params.seed) == (30, 4.0, 25, 42)
    assert (second.params.steps, second.params.seed, second.params.fps) == (None, None, 16)  # optional: defaulted
    assert first.output == tmp_path / "outputs" / "example_1.mp4"  # relative to the batch file
    with pytest.raises(InvalidParametersError, match="--force"):
        batch.write_template(config)
    batch.write_template(config, force=True)


def test_every_bad_job_is_reported_before_anything_runs(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "portrait.png", tmp_path / "face.png")
    (tmp_path / "fake.wav").write_bytes(b"this is not audio at all")
    good = {"referenceImage": "face.png", "audio": str(EXAMPLES / "speech.wav"), "output": "a.mp4"}
    config = _write(
        tmp_path / "jobs.json",
        [
            good,
            {**good, "output": "b.mp4", "numInferenceSteps": 500, "guidanceScale": 0.5, "fps": 60},
            {**good, "output": "c.mp4", "guidance": 3.0},
            {"audio": good["audio"], "output": "d.mp4"},
            {**good, "output": "e.mp4", "audio": "missing.wav"},
            {**good, "output": "f.mp4", "audio": "fake.wav"},
            {**good},
            "not an object",
        ],
    )
    jobs = batch.load_jobs(config)
    problems = {job.number: " | ".join(job.problems) for job in jobs}
    assert problems[1] == ""
    assert "steps must be between 1 and 100, got 500" in problems[2]
    assert (
        "guidance must be between 1 and 10, got 0.5" in problems[2] and "fps must be between 15 and 30" in problems[2]
    )
    assert "unknown key 'guidance' (did you mean 'guidanceScale'?)" in problems[3]
    assert "missing 'referenceImage'" in problems[4]
    assert "missing.wav does not exist" in problems[5]
    assert "fake.wav is not a format ComfyUI reads" in problems[6]
    assert "also written by job 1" in problems[7]
    assert "not a JSON object" in problems[8]


def test_invalid_jobs_never_run_and_the_summary_counts_them(tmp_path: Path) -> None:
    config = _write(tmp_path / "jobs.json", [{"referenceImage": "x.png", "audio": "y.wav", "output": "z.mp4"}])
    outcomes = batch.run_jobs(AvatarGenerator(f"http://127.0.0.1:{free_port()}"), batch.load_jobs(config))
    assert [o.status for o in outcomes] == ["invalid"]
    text = batch.summary(outcomes)
    assert "job 1: invalid" in text and "0 ok, 1 invalid" in text


def test_server_down_fails_the_first_job_and_skips_the_rest(tmp_path: Path) -> None:
    job = {"referenceImage": str(EXAMPLES / "portrait.png"), "audio": str(EXAMPLES / "speech.wav")}
    config = _write(tmp_path / "jobs.json", [{**job, "output": f"{n}.mp4"} for n in range(3)])
    outcomes = batch.run_jobs(AvatarGenerator(f"http://127.0.0.1:{free_port()}"), batch.load_jobs(config))
    assert [o.status for o in outcomes] == ["failed", "skipped", "skipped"]
    assert "python main.py" in outcomes[0].message
    assert "0 ok, 1 failed, 2 skipped" in batch.summary(outcomes)


@pytest.mark.parametrize("content", ["{broken", "[]", '{"jobs": 3}'])
def test_unreadable_batch_files(tmp_path: Path, content: str) -> None:
    config = tmp_path / "jobs.json"
    config.write_text(content)
    with pytest.raises(InvalidParametersError):
        batch.load_jobs(config)
    with pytest.raises(InvalidParametersError, match="does not exist"):
        batch.load_jobs(tmp_path / "nothing.json")
