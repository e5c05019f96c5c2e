"""The box editor and the pre-run notes in the real ComfyUI frontend (headless Chromium, real mouse events): boxes
drawn on the portrait land in Audio Encode's widgets and in the saved workflow, and the video queued from the page
follows them exactly as the same regions given as MASKs; the faces found by the engine show in the editor and can be
corrected; the crop preview is the engine's crop; Audio Encode shows duration, segments and frames and the loaders
whether their files are there.

Set LONGCAT_UPDATE_DOCS=1 to also write the README's screenshot (docs/two_speakers_box_editor.png)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import torch

from pipeline.faces import speaker_boxes_from_faces
from pipeline.imaging import PIXEL_LEVELS, image_crop_rectangle
from pipeline.preflight import crop_preview, plan_audio
from support.audio_helpers import read_audio
from support.avatar_graph import add_box_masks, ensure_tiny_models, make_speech, ui_workflows
from support.comfy_server import ComfyServer
from support.face_images import save_png, two_people
from support.video_probe import decode_frames
from workflows.tools.browser import open_page

pytestmark = [pytest.mark.comfy, pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "docs" / "two_speakers_box_editor.png"
WORKFLOW = "longcat_avatar_v15_two_speakers"
ENCODE = "8"  # Audio Encode's node id in that workflow
SIZE = (96, 64)  # (width, height) of the generation: landscape like the two-person picture, tiny for the CPU
SOURCE = (512, 896)  # (height, width) of the two-person picture
EDITOR = ".longcat-box-editor-portrait"
PIXEL_SLACK = 3  # image pixels: one screen pixel covers ~2.5 of them, and the editor rounds to whole pixels
DOMINANT = {"speaker 1": 0, "speaker 2": 2}  # red and blue boxes (web/longcat_box_editor.js COLOURS): their channel

LOAD = """
async ([workflow, image, audios, resolution, width, height, prefix]) => {
  await window.app.loadGraphData(workflow, true, true, "box_editor.json");
  const graph = window.app.graph;
  const set = (node, name, value) => { node.widgets.find((w) => w.name === name).value = value; };
  graph.nodes.filter((n) => n.type === "LoadImage").forEach((n) => set(n, "image", image));
  graph.nodes.filter((n) => n.type === "LoadAudio").forEach((n, i) => set(n, "audio", audios[i]));
  const portrait = graph.nodes.find((n) => n.type === "LongCatAvatarPortraitEncode");
  set(portrait, "resolution", resolution); set(portrait, "width", width); set(portrait, "height", height);
  graph.nodes.filter((n) => n.type === "LongCatAvatarVideoCombine").forEach((n) => set(n, "filename_prefix", prefix));
  const encode = graph.getNodeById(8);
  const canvas = window.app.canvas;  // show Audio Encode at 100% near the top left of the page
  canvas.ds.scale = 1;
  canvas.ds.offset[0] = 120 - encode.pos[0];
  canvas.ds.offset[1] = 160 - encode.pos[1];
  canvas.setDirty(true, true);
  window.__longcatAvatar.boxEditors = {};
}
"""
WIDGET = "([id, name]) => window.app.graph.getNodeById(Number(id)).widgets.find((w) => w.name === name).value"
EDITOR_STATE = """(id) => { const e = window.__longcatAvatar.boxEditors?.[id];
  return e && { ready: !!e.ready, boxes: e.boxes, answer: e.answer, status: e.status.textContent }; }"""


@pytest.fixture(scope="module")
def media(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Tiny models, the two-person picture and two speakers' speech on the server."""
    ensure_tiny_models(comfy_server.models_dir)
    folder = tmp_path_factory.mktemp("box-editor")
    speech = [make_speech(folder / "left.wav", "Hello from the left."), make_speech(folder / "right.wav", "Hi there.")]
    return {
        "image": comfy_server.upload(save_png(two_people(), folder / "box_editor_people.png")),
        "audios": [comfy_server.upload(path) for path in speech],
        "speech": speech,
    }


@pytest.fixture(scope="module")
def page(comfy_server: ComfyServer) -> Iterator[Any]:
    """One frontend page (the frontend takes seconds to boot), without the first-run template gallery."""
    requests.post(f"{comfy_server.url}/settings/Comfy.TutorialCompleted", json=True, timeout=30).raise_for_status()
    with open_page(comfy_server.url) as page:
        page.set_viewport_size({"width": 1600, "height": 1100})
        page.wait_for_function("() => window.__longcatAvatar && window.__longcatAvatar.loaded === true")
        yield page


def load_workflow(page: Any, media: dict[str, Any], prefix: str, resolution: str = "custom") -> dict[str, Any]:
    """Load the two-speaker workflow with the test's files; wait until the editor shows the portrait."""
    workflow = json.loads(ui_workflows()[WORKFLOW].read_text())
    page.evaluate(LOAD, [workflow, media["image"], media["audios"], resolution, *SIZE, prefix])
    page.wait_for_function(f"(id) => ({EDITOR_STATE})(id)?.ready", arg=ENCODE)
    return workflow


def editor_state(page: Any) -> dict[str, Any]:
    """The editor's boxes and the engine's last answer."""
    return page.evaluate(EDITOR_STATE, ENCODE)


def widget_boxes(page: Any, name: str = "speaker_boxes") -> list[list[float]]:
    """The boxes an Audio Encode widget holds."""
    text = page.evaluate(WIDGET, [ENCODE, name])
    return [[float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()]


def wait_boxes(page: Any, count: int, name: str = "speaker_boxes") -> list[list[float]]:
    """Wait until the widget holds `count` boxes and the editor has re-read them from the engine."""
    page.wait_for_function(
        f"([id, name, n]) => ({WIDGET})([id, name]).split('\\n').filter((l) => l.trim()).length === n",
        arg=[ENCODE, name, count],
    )
    key = "speakers" if name == "speaker_boxes" else "extras"
    page.wait_for_function(
        f"([id, key, n]) => ({EDITOR_STATE})(id)?.answer?.boxes?.[key]?.length === n", arg=[ENCODE, key, count]
    )
    return widget_boxes(page, name)


def to_client(page: Any, y: float, x: float) -> tuple[float, float]:
    """Page coordinates of image pixel (y, x) on the editor's portrait (the canvas shows the whole image)."""
    area = page.locator(EDITOR).bounding_box()
    return area["x"] + x * area["width"] / SOURCE[1], area["y"] + y * area["height"] / SOURCE[0]


def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at image pixel `start` (y, x), move in steps to `end`, release: real mouse events."""
    page.mouse.move(*to_client(page, *start))
    page.mouse.down()
    page.mouse.move(*to_client(page, *end), steps=8)
    page.mouse.up()


def assert_close(got: list[list[float]], expected: list[tuple[float, ...]]) -> None:
    """Boxes equal up to the screen-to-image rounding."""
    assert len(got) == len(expected), (got, expected)
    for box, want in zip(got, expected, strict=True):
        assert max(abs(a - b) for a, b in zip(box, want, strict=True)) <= PIXEL_SLACK, (got, expected)


def node_screenshot(page: Any, path: Path) -> Path:
    """A PNG of Audio Encode as it is on the page."""
    area = page.evaluate(
        """(id) => { const n = window.app.graph.getNodeById(Number(id)); const c = window.app.canvas;
        const r = c.canvas.getBoundingClientRect(); const s = c.ds.scale; const t = window.LiteGraph.NODE_TITLE_HEIGHT;
        return { x: r.left + (n.pos[0] + c.ds.offset[0]) * s, y: r.top + (n.pos[1] - t + c.ds.offset[1]) * s,
                 width: n.size[0] * s, height: (n.size[1] + t) * s }; }""",
        ENCODE,
    )
    page.screenshot(path=str(path), clip=area)
    return path


def queue_from_page(page: Any, comfy_server: ComfyServer, workflow: dict[str, Any], destination: Path) -> np.ndarray:
    """Queue the page's workflow as the Run button does; the frames of the MP4 it writes."""
    combine = next(n["id"] for n in workflow["nodes"] if n["type"] == "LongCatAvatarVideoCombine")
    page.evaluate(
        "(id) => { delete window.app.nodeOutputs?.[String(id)]; return window.app.queuePrompt(0, 1); }", combine
    )
    page.wait_for_function(
        "(id) => window.app.nodeOutputs?.[String(id)]?.images?.[0]?.filename?.endsWith('.mp4')",
        arg=combine,
        timeout=900_000,
    )
    item = page.evaluate("(id) => window.app.nodeOutputs[String(id)].images[0]", combine)
    return decode_frames(comfy_server.fetch_output(item, destination))


def run_frames(comfy_server: ComfyServer, prompt: dict[str, Any], destination: Path) -> np.ndarray:
    """Run an API prompt; the frames of the MP4 its Video Combine writes."""
    run = comfy_server.run(prompt, timeout=900)
    assert run.status == "success", f"{run.error_message()}\n{comfy_server.log_tail()}"
    combine = next(k for k, v in prompt.items() if v["class_type"] == "LongCatAvatarVideoCombine")
    return decode_frames(comfy_server.fetch_output(run.outputs(combine)["images"][0], destination))


def test_box_editor_boxes_drawn_with_the_mouse_are_saved_and_steer_the_video(
    page: Any, comfy_server: ComfyServer, media: dict[str, Any], tmp_path: Path
) -> None:
    workflow = load_workflow(page, media, "box_editor/drawn")
    assert widget_boxes(page) == [] and editor_state(page)["answer"]["defaults"] is True
    portrait_area = page.locator(EDITOR).bounding_box()
    drag(page, (150, 60), (500, 380))  # speaker 1: the small person on the left
    assert_close(wait_boxes(page, 1), [(150, 60, 500, 380)])
    drag(page, (20, 440), (505, 860))  # speaker 2: the astronaut on the right
    assert_close(wait_boxes(page, 2), [(150, 60, 500, 380), (20, 440, 505, 860)])
    # the status text changed ("no boxes" went): the portrait stayed where it was under the mouse
    assert page.locator(EDITOR).bounding_box() == portrait_area
    drag(page, (10, 700), (90, 880))  # a third box is a silent extra person
    assert_close(wait_boxes(page, 1, "extra_people_boxes"), [(10, 700, 90, 880)])
    x_button = to_client(page, 10, 880)
    page.mouse.click(x_button[0] - 5, x_button[1] + 5)  # its x button deletes it
    assert wait_boxes(page, 0, "extra_people_boxes") == []
    drag(page, (300, 600), (290, 640))  # move speaker 2 by dragging its inside
    page.wait_for_function(f"(id) => ({WIDGET})([id, 'speaker_boxes']).endsWith(', 896')", arg=ENCODE)
    boxes = wait_boxes(page, 2)
    assert_close(boxes, [(150, 60, 500, 380), (10, 476, 495, 896)])  # moved up 10, right until the image's edge

    saved = page.evaluate("() => window.app.graph.serialize()")
    encode = next(n for n in saved["nodes"] if n["id"] == int(ENCODE))
    original = next(n for n in workflow["nodes"] if n["id"] == int(ENCODE))
    assert len(encode["widgets_values"]) == len(original["widgets_values"])  # the editor itself saves nothing
    text = page.evaluate(WIDGET, [ENCODE, "speaker_boxes"])
    assert text in encode["widgets_values"] and text.count("\n") == 1
    prompt = page.evaluate("async () => (await window.app.graphToPrompt()).output")
    assert prompt[ENCODE]["inputs"]["speaker_boxes"] == text
    assert not any(key.startswith("longcat_") for key in prompt[ENCODE]["inputs"])

    drawn = queue_from_page(page, comfy_server, workflow, tmp_path / "drawn.mp4")
    as_masks = json.loads(json.dumps(prompt))
    as_masks[ENCODE]["inputs"]["speaker_boxes"] = ""
    add_box_masks(as_masks, ENCODE, boxes, SOURCE[1], SOURCE[0])
    halves = json.loads(json.dumps(prompt))
    halves[ENCODE]["inputs"]["speaker_boxes"] = ""
    for other, tag in ((as_masks, "masks"), (halves, "halves")):
        combine = next(k for k, v in other.items() if v["class_type"] == "LongCatAvatarVideoCombine")
        other[combine]["inputs"]["filename_prefix"] = f"box_editor/{tag}"
    masked = run_frames(comfy_server, as_masks, tmp_path / "masks.mp4")
    default = run_frames(comfy_server, halves, tmp_path / "halves.mp4")
    assert drawn.shape[0] > 25 and drawn.shape[1:] == (SIZE[1], SIZE[0], 3)
    assert np.array_equal(drawn, masked)  # the drawn boxes act exactly as the same regions given as MASKs
    assert np.abs(drawn.astype(float) - default.astype(float)).mean() > 0.1  # and they matter: the halves differ


def _canvas_colour(page: Any, y: float, x: float) -> tuple[int, int, int]:
    """The colour the editor drew at image pixel (y, x)."""
    return tuple(
        page.evaluate(
            """([sel, y, x, h, w]) => { const c = document.querySelector(sel);
            const d = c.getContext('2d').getImageData(Math.round(x * c.width / w), Math.round(y * c.height / h), 1, 1);
            return Array.from(d.data.slice(0, 3)); }""",
            [EDITOR, y, x, *SOURCE],
        )
    )


def test_box_editor_shows_face_boxes_found_automatically_and_they_can_be_corrected(
    page: Any, media: dict[str, Any], tmp_path: Path
) -> None:
    load_workflow(page, media, "box_editor/faces", "480p")  # nothing is generated: the real size, for the picture
    page.get_by_role("button", name="Find faces").click()
    found = wait_boxes(page, 2)
    expected = speaker_boxes_from_faces(two_people())
    assert found == [list(map(float, b)) for b in expected]
    state = editor_state(page)
    assert state["boxes"]["speakers"] == [list(b) for b in expected]
    for (y0, x0, _, x1), name in zip(expected, DOMINANT, strict=True):  # each box is drawn in its speaker's colour
        colour = _canvas_colour(page, y0, (x0 + x1) / 2)
        others = [c for i, c in enumerate(colour) if i != DOMINANT[name]]
        assert colour[DOMINANT[name]] - max(others) > 60, (name, colour)  # the photo is grey there

    y0, x0, y1, x1 = expected[0]
    drag(page, (y1, x1), (y1 + 40, x1 + 30))  # correct speaker 1: pull its bottom-right corner out
    corrected = wait_boxes(page, 2)
    assert_close(corrected, [(y0, x0, y1 + 40, x1 + 30), expected[1]])
    page.wait_for_function(
        f"([id, b]) => JSON.stringify(({EDITOR_STATE})(id).answer.boxes.speakers) === JSON.stringify(b)",
        arg=[ENCODE, corrected],
    )

    answer = editor_state(page)["answer"]  # the crop and mask preview the editor shows are the engine's
    image = torch.from_numpy(two_people().astype(np.float32) / PIXEL_LEVELS)[None]
    local = crop_preview(image, "480p", 0, 0, corrected)
    assert local.size_hw == (480, 832) and answer["size"] == {"height": 480, "width": 832}
    assert [answer["crop"][k] for k in ("top", "left", "bottom", "right")] == list(
        image_crop_rectangle(*SOURCE, 480, 832)
    )
    shown = torch.tensor([m["cells"] for m in answer["masks"]], dtype=torch.bool)
    assert answer["boxes"]["used"] == corrected and torch.equal(shown, local.grid_masks)
    assert page.locator(".longcat-box-editor-mask").bounding_box()["width"] > 50

    shot = node_screenshot(page, tmp_path / "box_editor.png")
    assert shot.stat().st_size > 10_000
    if os.environ.get("LONGCAT_UPDATE_DOCS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_box_editor_notes_show_duration_segments_and_model_files(page: Any, media: dict[str, Any]) -> None:
    load_workflow(page, media, "box_editor/notes")
    note = "(id) => window.__longcatAvatar.preflight?.[id]?.text"
    page.wait_for_function(f"(id) => ({note})(id)?.startsWith('Audio')", arg=ENCODE)
    text = page.evaluate(note, ENCODE)
    plan = plan_audio([read_audio(p) for p in media["speech"]], "para", "v1.5")
    segments = f"{plan.num_segments} segment" + ("" if plan.num_segments == 1 else "s")
    assert text.startswith(f"Audio {plan.duration_s:.2f} s (two speakers) → v1.5 at 25 fps: {plan.frames} frames in "
                           f"{segments} ({plan.generated_frames} generated)")  # fmt: skip

    loader = "1"  # the model loader: every file of the tiny layout is there
    page.wait_for_function(f"(id) => ({note})(id)?.includes('model: found')", arg=loader)
    page.evaluate(
        "(id) => { window.app.graph.getNodeById(Number(id)).widgets.find((w) => w.name === 'model').value = "
        "'someone_elses_dit.safetensors'; }",
        loader,
    )
    page.wait_for_function(f"(id) => ({note})(id)?.includes('model: not found')", arg=loader)
    link = page.locator(".longcat-preflight a").first
    assert link.get_attribute("href") == "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar-1.5"
