"""`separate_vocals` end to end on the client side: the command-line flag, the HTTP field and the batch key all reach
Audio Encode's `separate_vocals` input of the workflow; the example workflows separate recordings and not TTS."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from longcat_avatar import batch
from longcat_avatar import workflow as wf
from longcat_avatar.api_payload import PayloadError, parse_request
from longcat_avatar.cli import _params, build_parser
from support.avatar_graph import api_workflow, api_workflows, nodes_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ENCODE = "LongCatAvatarAudioEncode"
BASE = ["generate", "--image", "p.png", "--audio", "s.wav", "--output", "o.mp4"]


def separation_in(workflow: dict) -> list[str]:
    """The separate_vocals value of every Audio Encode node of a filled workflow."""
    return [node["inputs"]["separate_vocals"] for node in nodes_of(workflow, ENCODE)]


@pytest.mark.parametrize(
    ("flags", "expected"), [([], None), (["--separate-vocals"], True), (["--no-separate-vocals"], False)]
)
def test_vocal_cli_flag_reaches_the_workflow(flags: list[str], expected: bool | None) -> None:
    params = _params(build_parser().parse_args(BASE + flags))
    assert params.separate_vocals is expected
    template = api_workflow("longcat_avatar_v15_single_distilled")
    filled = wf.fill_workflow(template, wf.generation_values(params))
    assert separation_in(filled) == [{None: "auto", True: "auto", False: "off"}[expected]]


def test_vocal_separation_can_be_asked_for_text_to_speech_too() -> None:
    params = _params(build_parser().parse_args([*BASE[:3], "--text", "hi", "--output", "o.mp4", "--separate-vocals"]))
    filled = wf.fill_workflow(api_workflow("longcat_avatar_v15_tts"), wf.generation_values(params))
    assert separation_in(filled) == ["auto"]


def test_vocal_http_field() -> None:
    image = base64.b64encode((EXAMPLES / "portrait.png").read_bytes()).decode()
    audio = base64.b64encode((EXAMPLES / "speech.wav").read_bytes()).decode()
    body = {"reference_image": image, "audio": audio}
    assert parse_request(body).params.separate_vocals is None
    assert parse_request(body | {"separate_vocals": False}).params.separate_vocals is False
    with pytest.raises(PayloadError) as refused:
        parse_request(body | {"separate_vocals": "yes"})
    assert refused.value.status == 422 and "separate_vocals must be true or false, got 'yes'" in refused.value.reason


def test_vocal_batch_key(tmp_path: Path) -> None:
    job = {"referenceImage": "p.png", "audio": "s.wav", "output": "o.mp4"}
    config = tmp_path / "jobs.json"
    config.write_text(json.dumps([job | {"separateVocals": True}, job | {"separateVocals": 1}]))
    good, bad = batch.load_jobs(config)
    assert good.params.separate_vocals is True
    assert any("separate_vocals must be true or false, got 1" in problem for problem in bad.problems)


def test_vocal_separation_in_the_example_workflows() -> None:
    for name in api_workflows():
        expected = "off" if name.endswith("_tts") else "auto"  # TTS speech is clean; recordings may carry music
        assert set(separation_in(api_workflow(name))) == {expected}, name
