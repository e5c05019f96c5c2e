"""The pack's HTTP routes on the ComfyUI server: POST /longcat/avatar and GET /longcat/avatar/{job_id}.

Importing this package registers them. It never raises: if registration fails the nodes still load, and the log says
why.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _register() -> bool:
    try:
        from .avatar import register

        register()
    except Exception:  # any failure here must not stop ComfyUI from loading the nodes
        log.exception("LongCat Avatar: could not register the HTTP endpoint /longcat/avatar (the nodes still work)")
        return False
    return True


REGISTERED = _register()
