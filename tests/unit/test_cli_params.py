"""Generation parameters: the ranges the CLI, batch files and the HTTP endpoint share (steps, guidance, fps, ...)."""

from __future__ import annotations

import pytest

from longcat_avatar.params import GenerationParams, custom_size, validate, warnings_for


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("steps", 1, True),
        ("steps", 100, True),
        ("steps", 0, False),
        ("steps", 101, False),
        ("steps", 30.5, False),
        ("steps", "30", False),
        ("steps", True, False),
        ("guidance", 1.0, True),
        ("guidance", 10.0, True),
        ("guidance", 0.99, False),
        ("guidance", 10.01, False),
        ("text_guidance", 4, True),
        ("text_guidance", 11, False),
        ("fps", 15, True),
        ("fps", 30, True),
        ("fps", 14.9, False),
        ("fps", 30.1, False),
        ("seed", 0, True),
        ("seed", 2**64 - 1, True),
        ("seed", -1, False),
        ("seed", 2**64, False),
        ("version", "1.0", True),
        ("version", "2.0", False),
        ("resolution", "480p", True),
        ("resolution", "832x480", True),
        ("resolution", "830x480", False),
        ("resolution", "big", False),
        ("distilled", "off", True),
        ("distilled", "maybe", False),
    ],
)
def test_ranges(field: str, value: object, ok: bool) -> None:
    problems = validate(GenerationParams(**{field: value}))
    assert (problems == []) is ok, problems
    if not ok:
        assert len(problems) == 1 and (field.replace("_", " ") in problems[0] or field in problems[0])


def test_out_of_range_message_names_the_range() -> None:
    (problem,) = validate(GenerationParams(steps=150))
    assert problem == "steps must be between 1 and 100, got 150"
    (problem,) = validate(GenerationParams(fps=60.0))
    assert problem == "fps must be between 15 and 30, got 60"


def test_every_problem_is_reported_at_once() -> None:
    problems = validate(GenerationParams(steps=0, guidance=20.0, fps=5.0, seed=-3, version="9"))
    assert len(problems) == 5


def test_recommended_steps_only_warn() -> None:
    assert warnings_for(GenerationParams(steps=30)) == []
    assert warnings_for(GenerationParams(steps=8)) == []  # the distilled schedule
    assert warnings_for(GenerationParams()) == []
    (warning,) = warnings_for(GenerationParams(steps=10))
    assert "20-50" in warning
    assert validate(GenerationParams(steps=10)) == []


def test_random_seed_is_drawn_once_and_kept() -> None:
    fixed = GenerationParams(seed=5).with_seed()
    assert fixed.seed == 5
    seeds = {GenerationParams().with_seed().seed for _ in range(20)}
    assert len(seeds) > 15 and all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds)


def test_custom_size() -> None:
    assert custom_size("64x96") == (64, 96)
    assert custom_size("480p") is None
    assert custom_size("512x512") is None  # a named resolution of Portrait Encode
