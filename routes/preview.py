"""aiohttp handlers the pack's browser extension calls before anything is queued, all under /longcat/preview/.

- POST crop   {image, resolution, width, height, speaker_boxes, extra_people_boxes}: the portrait's crop as the model
  gets it, its rectangle in the portrait, the speaker masks on the model's token grid and the boxes the widget text
  holds (the box editor draws these, it computes none of them);
- POST faces  {image, min_face_share?, margin?}: the speaker boxes found from the faces, or the refusal;
- POST audio  {audio, audio_2?, mode, audio_encoder?}: the speech's duration, segments and frames;
- GET models: which loader widgets name model files; POST models {node, values}: whether each file is there, and the
  download page when it is not.
`image` and `audio` are the Load Image / Load Audio widget values. Refusals are 4xx {error}; the work runs in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import PIL.Image
import torch
from aiohttp import web
from server import PromptServer

from ..nodes.audio_encode import format_boxes, parse_boxes
from ..pipeline.audio.speaker_masks import NUM_HUMANS
from ..pipeline.faces import DEFAULT_MARGIN, DEFAULT_MIN_FACE_SHARE, FaceBoxError, speaker_boxes_from_faces
from ..pipeline.imaging import PIXEL_LEVELS
from ..pipeline.preflight import crop_preview
from .preview_inputs import PreviewError, audio_plans, load_image, loader_widgets, model_file_status, view_params

log = logging.getLogger(__name__)

PREFIX = "/longcat/preview"
MAX_BODY_BYTES = 1 << 20  # a request names files; it never carries media


def _png_data_url(pixels: torch.Tensor) -> str:
    """A [H, W, 3] float image in [0, 1] as a data: URL of an 8-bit PNG."""
    array = (pixels.clamp(0, 1) * PIXEL_LEVELS).round().to(torch.uint8).cpu().numpy()
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _box_list(text: Any, label: str) -> list[list[float]]:
    """Boxes from a widget's text, parsed by Audio Encode's own parser."""
    try:
        return parse_boxes(str(text or ""), label)
    except ValueError as error:
        raise PreviewError(400, str(error)) from error


def crop_answer(body: dict[str, Any]) -> dict[str, Any]:
    """The crop, the token masks and the parsed boxes for the box editor."""
    image = load_image(body.get("image"))
    speakers = _box_list(body.get("speaker_boxes"), "speaker_boxes")
    extras = _box_list(body.get("extra_people_boxes"), "extra_people_boxes")
    if len(speakers) not in (0, 2):
        note = f"speaker_boxes holds {len(speakers)} box(es); Audio Encode needs 2 (or none for the halves)"
        used = None
    else:
        note, used = "", speakers or None
    try:
        size = int(body.get("width") or 0), int(body.get("height") or 0)
        preview = crop_preview(image, str(body.get("resolution", "512x512")), *size, used, extras)
    except (TypeError, ValueError) as error:
        raise PreviewError(400, str(error)) from error
    if preview.empty_speakers:
        note = f"speaker box(es) {preview.empty_speakers} cover no token of the model's grid: the run would refuse them"
    (src_h, src_w), (height, width) = preview.source_hw, preview.size_hw
    return {
        "view": view_params(str(body.get("image"))),
        "source": {"height": src_h, "width": src_w},
        "size": {"height": height, "width": width},
        "crop": dict(zip(("top", "left", "bottom", "right"), preview.crop, strict=True)),
        "grid": {"height": int(preview.grid_masks.shape[1]), "width": int(preview.grid_masks.shape[2])},
        "masks": [
            {"name": name, "cells": mask.int().tolist()}
            for name, mask in zip(preview.mask_names(), preview.grid_masks, strict=True)
        ],
        "boxes": {"speakers": speakers, "extras": extras, "used": [list(b) for b in preview.boxes]},
        "defaults": used is None,
        "cropped": _png_data_url(preview.pixels),
        "note": note,
    }


def faces_answer(body: dict[str, Any]) -> dict[str, Any]:
    """Speaker boxes from the portrait's faces, as Speaker Boxes from Faces finds them."""
    image = load_image(body.get("image"))
    try:
        share = float(body.get("min_face_share", DEFAULT_MIN_FACE_SHARE))
        margin = float(body.get("margin", DEFAULT_MARGIN))
    except (TypeError, ValueError) as error:
        raise PreviewError(400, f"min_face_share and margin must be numbers: {error}") from error
    try:
        boxes = speaker_boxes_from_faces(image, NUM_HUMANS, share, margin)
    except FaceBoxError as error:
        raise PreviewError(422, str(error)) from error
    return {"boxes": [list(b) for b in boxes], "text": format_boxes(boxes)}


def audio_answer(body: dict[str, Any]) -> dict[str, Any]:
    """Duration, segments and frames of the speech at the version's frame rate (every version when unknown)."""
    names = [body.get("audio"), body.get("audio_2")]
    if not names[0]:
        raise PreviewError(400, "'audio' must name the first speaker's audio file")
    return audio_plans(names, str(body.get("mode", "para")), body.get("audio_encoder"))


def models_answer(body: dict[str, Any]) -> dict[str, Any]:
    """Found / missing (with the download page) for each model widget of one loader node."""
    widgets = loader_widgets().get(str(body.get("node")))
    if widgets is None:
        raise PreviewError(404, f"'{body.get('node')}' is not one of the pack's loader nodes")
    values = body.get("values") or {}
    return {"files": {name: model_file_status(widgets[name], values.get(name)) for name in widgets if name in values}}


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PreviewError(413, f"the request is larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as error:
        raise PreviewError(400, f"the body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise PreviewError(400, "the body must be a JSON object")
    return body


def _handler(answer: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A POST handler: JSON in, `answer` in a worker thread, JSON out; PreviewError → its status and reason."""

    async def handle(request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
            return web.json_response(await asyncio.to_thread(answer, body))
        except PreviewError as error:
            return web.json_response({"error": error.reason}, status=error.status)

    return handle


async def get_models(request: web.Request) -> web.Response:
    """The loader nodes and their model widgets."""
    return web.json_response({node: sorted(widgets) for node, widgets in loader_widgets().items()})


def register() -> None:
    """Add the preview routes to the running ComfyUI server."""
    routes = PromptServer.instance.routes
    for name, answer in (("crop", crop_answer), ("faces", faces_answer), ("audio", audio_answer)):
        routes.post(f"{PREFIX}/{name}")(_handler(answer))
    routes.get(f"{PREFIX}/models")(get_models)
    routes.post(f"{PREFIX}/models")(_handler(models_answer))
    log.info("LongCat Avatar: preview routes %s/{crop,faces,audio,models} registered", PREFIX)
