"""One check for every fixed-choice widget: ComfyUI 0.3.75 does not check the values of V3 combos sent through
POST /prompt, so each node refuses an unknown value itself, naming the allowed ones, instead of falling back."""

from __future__ import annotations

from collections.abc import Sequence


def choice_problem(name: str, value: object, allowed: Sequence[str]) -> str | None:
    """None when `value` is allowed (or not known yet: a linked input at validation), else a sentence naming them."""
    if value is None or value in allowed:
        return None
    return f"{name} {value!r} is not one of: {', '.join(allowed)}"


def check_choices(**widgets: tuple[object, Sequence[str]]) -> bool | str:
    """A validate_inputs result for (value, allowed) pairs: True, or every problem in one message."""
    problems = [choice_problem(name, value, allowed) for name, (value, allowed) in widgets.items()]
    found = [problem for problem in problems if problem]
    return "; ".join(found) if found else True


def require_choice(name: str, value: str, allowed: Sequence[str]) -> str:
    """The value when allowed, else ValueError naming the allowed ones (never a silent default)."""
    problem = choice_problem(name, value, allowed) if value is not None else f"{name} is missing"
    if problem:
        raise ValueError(problem)
    return value
