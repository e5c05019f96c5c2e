"""The pack's HTTP routes on the ComfyUI server: POST /longcat/avatar, GET /longcat/avatar/{job_id}, the model
downloads of the loaders' button (/longcat/downloads) and the browser extension's /longcat/preview/* routes.

Importing this package registers them. It never raises: if registration fails the nodes still load, and the log says
why.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)


def _register(module: str, what: str) -> bool:
    try:
        importlib.import_module(f".{module}", __name__).register()
    except Exception:  # any failure here must not stop ComfyUI from loading the nodes
        log.exception("LongCat Avatar: could not register %s (the nodes still work)", what)
        return False
    return True


REGISTERED = _register("avatar", "the HTTP endpoint /longcat/avatar")
DOWNLOADS_REGISTERED = _register("downloads", "the model downloads of the loaders' button, /longcat/downloads")
PREVIEW_REGISTERED = _register("preview", "the box editor's and pre-run notes' routes /longcat/preview/*")
