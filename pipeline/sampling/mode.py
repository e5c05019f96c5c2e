"""Distilled or full sampling: the one place that decides, and says why (plain data: importable without torch).

The reference demo runs v1.5 with `--use_distill`: it loads the DMD distillation LoRA and forces 8 steps with both
guidance scales at 1 (no CFG). Here `distilled` is "on", "off" or "auto"; auto distils only when the model carries
that LoRA, so any other LoRA (a style LoRA) keeps the user's steps and guidance. v1.0 has no distillation LoRA and
no distilled mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..versions import get_version

DISTILLED_CHOICES = ("auto", "on", "off")
LORA_NONE, LORA_DISTILLATION, LORA_OTHER = "none", "distillation", "other"  # what LoRA a model carries
LORA_ROLES = (LORA_NONE, LORA_DISTILLATION, LORA_OTHER)
NO_GUIDANCE = 1.0  # a guidance scale of 1 is the conditional prediction alone (the demo's forced value)


@dataclass(frozen=True)
class SamplingMode:
    """What the sampler really runs, and the sentence that says so (and which widgets it does not use)."""

    distilled: bool
    steps: int
    text_guidance: float
    audio_guidance: float
    note: str


def normalize_distilled(distilled: bool | str) -> str:
    """ "on" / "off" / "auto" from the widget value (True and False are "on" and "off")."""
    if isinstance(distilled, bool):
        return "on" if distilled else "off"
    return distilled


def distilled_problem(version: str, distilled: bool | str) -> str | None:
    """Why this version/distilled pair cannot run (a readable sentence), or None when it can."""
    choice = normalize_distilled(distilled)
    if choice not in DISTILLED_CHOICES:
        return f"distilled must be one of {', '.join(DISTILLED_CHOICES)}, got {choice!r}"
    spec = get_version(version)
    if choice == "on" and spec.distill_steps is None:
        return (
            f"distilled=on needs a distillation LoRA, and LongCat-Video-Avatar {spec.version} has none: set distilled "
            "to off (or auto) for full sampling, or use the v1.5 model with its lora/dmd_lora.safetensors"
        )
    return None


def sampling_mode(
    version: str, distilled: bool | str, lora: str, steps: int, text_guidance: float, audio_guidance: float
) -> SamplingMode:
    """The mode of one generation: distilled (8 steps, no guidance) or full with the caller's steps and guidance.

    `lora` is what the model carries (LORA_ROLES). ValueError when the pair cannot run (`distilled_problem`).
    """
    problem = distilled_problem(version, distilled)
    if problem is not None:
        raise ValueError(problem)
    if lora not in LORA_ROLES:
        raise ValueError(f"lora must be one of {', '.join(LORA_ROLES)}, got {lora!r}")
    choice, spec = normalize_distilled(distilled), get_version(version)
    if choice == "on" or (choice == "auto" and lora == LORA_DISTILLATION and spec.distill_steps is not None):
        return _distilled(spec.distill_steps, choice, lora, steps, text_guidance, audio_guidance)
    cfg = "with" if text_guidance > NO_GUIDANCE or audio_guidance > NO_GUIDANCE else "without"
    note = f"full sampling: {steps} steps {cfg} guidance (text {text_guidance:g}, audio {audio_guidance:g})"
    reason = _full_reason(spec.version, choice, lora)
    return SamplingMode(False, steps, text_guidance, audio_guidance, f"{note}{'; ' if reason else ''}{reason}")


def _distilled(distill_steps: int, choice: str, lora: str, steps: int, text: float, audio: float) -> SamplingMode:
    """The forced 8-step mode, naming the widgets whose values it does not use."""
    why = "the model carries the DMD distillation LoRA" if choice == "auto" else "distilled is on"
    note = f"distilled mode ({why}): the {distill_steps}-step distilled schedule without guidance"
    if lora != LORA_DISTILLATION:
        note += f" (without the DMD distillation LoRA {distill_steps} steps leave the video blurred)"
    widgets = (
        ("steps", steps, distill_steps),
        ("text_guidance", text, NO_GUIDANCE),
        ("audio_guidance", audio, NO_GUIDANCE),
    )
    ignored = [f"{name}={value:g}" for name, value, used in widgets if value != used]
    if ignored:
        note += f"; the widgets {', '.join(ignored)} are not used"
    return SamplingMode(True, distill_steps, NO_GUIDANCE, NO_GUIDANCE, note)


def _full_reason(version: str, choice: str, lora: str) -> str:
    """Why auto did not distil, when a LoRA might make the user expect it (empty otherwise)."""
    if choice == "auto" and lora == LORA_OTHER:
        return "auto keeps them: the LoRA is not the DMD distillation LoRA (lora/dmd_lora.safetensors or its tensors)"
    if choice == "auto" and lora == LORA_DISTILLATION:
        return f"auto keeps them: {version} has no distilled mode"
    if choice == "off" and lora == LORA_DISTILLATION:
        return "distilled is off although the DMD distillation LoRA is loaded (it is meant for 8 steps)"
    return ""
