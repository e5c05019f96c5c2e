"""Workflows: the client finds the right API workflow in workflows/ and fills its nodes by class_type, never by id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longcat_avatar import workflow as wf
from longcat_avatar.errors import WorkflowError
from longcat_avatar.params import GenerationParams


def _renumbered(workflow: dict) -> dict:
    """The same graph with every node id changed (links rewritten): filling must not depend on ids."""
    new_ids = {old: str(100 + i) for i, old in enumerate(workflow)}
    out = {}
    for old, node in workflow.items():
        inputs = {
            k: [new_ids[v[0]], v[1]] if isinstance(v, list) and len(v) == 2 and v[0] in new_ids else v
            for k, v in node["inputs"].items()
        }
        out[new_ids[old]] = {**node, "inputs": inputs}
    return out


def test_finds_the_main_workflow_of_each_version() -> None:
    v15 = wf.find_workflow("1.5")
    v10 = wf.find_workflow("1.0")
    tts = wf.find_workflow("1.5", tts=True)
    assert v15.name == "longcat_avatar_v15_single_distilled_api.json"
    assert v10.name == "longcat_avatar_v10_single_full_guidance_api.json"
    assert tts.name == "longcat_avatar_v15_tts_api.json"
    assert wf.workflow_version(wf.load_workflow(v10)) == "1.0"
    assert wf.TTS_NODE in wf.class_types(wf.load_workflow(tts))


def test_missing_workflow_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="--workflow"):
        wf.find_workflow("1.0", tts=True)
    with pytest.raises(WorkflowError, match="no API-format"):
        wf.find_workflow("1.5", folder=tmp_path)


def test_ui_format_file_gets_an_export_hint(tmp_path: Path) -> None:
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [], "links": []}))
    with pytest.raises(WorkflowError, match=r"Export \(API\)"):
        wf.load_workflow(ui)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(WorkflowError, match="not readable JSON"):
        wf.load_workflow(broken)


def test_fill_sets_every_value_on_the_nodes_of_its_class() -> None:
    template = _renumbered(wf.load_workflow(wf.find_workflow("1.5")))
    params = GenerationParams(steps=30, guidance=4.5, text_guidance=3.0, fps=16.0, seed=9, resolution="64x96",
                              prompt="a calm speaker", distilled="off")  # fmt: skip
    values = wf.generation_values(params) | {"image": "a.png", "audio": "b.wav"}
    filled = wf.fill_workflow(template, values)
    by_class = {node["class_type"]: node["inputs"] for node in filled.values()}
    sampler = by_class["LongCatAvatarSampler"]
    assert (sampler["steps"], sampler["audio_guidance"], sampler["text_guidance"], sampler["seed"]) == (30, 4.5, 3.0, 9)
    assert sampler["distilled"] == "off" and by_class["LongCatAvatarModelLoader"]["lora"] == "none"
    assert by_class["LongCatAvatarVideoCombine"]["frame_rate"] == 16.0
    portrait = by_class["LongCatAvatarPortraitEncode"]
    assert (portrait["resolution"], portrait["width"], portrait["height"]) == ("custom", 64, 96)
    assert by_class["LongCatAvatarTextEncode"]["prompt"] == "a calm speaker"
    assert by_class["LoadImage"]["image"] == "a.png" and by_class["LoadAudio"]["audio"] == "b.wav"
    assert template != filled  # the template itself is left untouched
    assert next(n for n in template.values() if n["class_type"] == "LoadImage")["inputs"]["image"] != "a.png"


def test_none_keeps_the_workflow_value() -> None:
    template = wf.load_workflow(wf.find_workflow("1.5"))
    filled = wf.fill_workflow(template, wf.generation_values(GenerationParams()))
    assert filled == template
    assert wf.read_value(template, "fps") == 25.0
    assert wf.sampling_mode(template).distilled  # auto + the DMD LoRA
    assert not wf.sampling_mode(
        wf.fill_workflow(template, wf.generation_values(GenerationParams(distilled="off")))
    ).distilled


def test_the_client_reads_the_engines_mode_decision() -> None:
    """auto distils only with the DMD LoRA (a style LoRA keeps the steps); v1.0 with distilled on is refused."""
    template = wf.load_workflow(wf.find_workflow("1.5"))
    style = wf.fill_workflow(template, {"lora": "my_style_lora.safetensors", "steps": 30})
    assert wf.lora_role(style) == "other" and wf.lora_role(template) == "distillation"
    mode = wf.sampling_mode(style)
    assert (mode.distilled, mode.steps) == (False, 30) and "not the DMD distillation LoRA" in mode.note
    v10 = wf.load_workflow(wf.find_workflow("1.0"))
    with pytest.raises(WorkflowError, match="v1.0 has none"):
        wf.sampling_mode(wf.fill_workflow(v10, {"distilled": "on"}))


def test_a_value_without_its_node_is_an_error() -> None:
    template = wf.load_workflow(wf.find_workflow("1.5"))
    with pytest.raises(WorkflowError, match="LongCatAvatarTextToSpeech"):
        wf.fill_workflow(template, {"speech_text": "hello"})
    no_sampler = {k: v for k, v in template.items() if v["class_type"] != "LongCatAvatarSampler"}
    with pytest.raises(WorkflowError, match="steps"):
        wf.fill_workflow(no_sampler, {"steps": 20})
