"""The Serve application on this machine alone: a local Ray, Serve on a free port, the app with the given arguments.

    python -m deploy.local --output talking.mp4

runs it end to end with tiny random models on the CPU (two replicas, each with its own ComfyUI): it builds the tiny
models, starts the application, sends the pack's example portrait and speech, and writes the video (noise: the models
are random; this proves the deployment, not the quality).
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from longcat_avatar.comfy_launcher import PACK_ROOT, free_port

from .comfy_child import warmup_body
from .settings import ROUTE

APP_NAME = "longcat-avatar"
LOGICAL_CPUS = 8  # Ray's bookkeeping, not cores: the ingress and each CPU replica reserve one
DEMO_REPLICAS = 2  # enough to see the jobs spread
DEMO_RESOLUTION = "64x96"  # tiny latents: the point is to run every node (as `doctor --selftest` does)
DEMO_TIMEOUT_S = 900  # a tiny job takes seconds; a busy 2-core machine can take minutes


@contextmanager
def local_app(args: dict[str, Any]) -> Iterator[str]:
    """Ray on this machine, Serve on a free port on 127.0.0.1 and the application; yields its URL, then stops all."""
    import ray
    from ray import serve

    from .serve_app import build_app

    # The workers import `deploy` and `longcat_avatar` from this folder, as `serve run` does from its working folder.
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(PACK_ROOT), os.environ.get("PYTHONPATH")]))}
    ray.init(num_cpus=LOGICAL_CPUS, include_dashboard=False, runtime_env={"env_vars": env})
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(args), name=APP_NAME, route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Build tiny models, serve them on two CPU replicas, render the example once, write the MP4."""
    parser = argparse.ArgumentParser(prog="python -m deploy.local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("talking.mp4"), help="where to write the video")
    parser.add_argument("--comfyui", default="", help="the ComfyUI folder (default: $COMFYUI_DIR)")
    options = parser.parse_args(argv)
    from longcat_avatar.tiny_models import build_layout  # imports torch: only when the demo runs

    with tempfile.TemporaryDirectory(prefix="longcat-serve-") as work:
        models = Path(work) / "models"
        build_layout(models, with_int8=True)  # the endpoint's workflows load the int8 DiT
        args = {"comfyui_dir": options.comfyui, "models_dir": str(models), "replicas": DEMO_REPLICAS,
                "gpus_per_replica": 0, "warmup_resolution": DEMO_RESOLUTION}  # fmt: skip
        with local_app(args) as url:
            started = time.monotonic()
            answer = requests.post(url + ROUTE, json=warmup_body(DEMO_RESOLUTION), timeout=DEMO_TIMEOUT_S)
            body = answer.json()
            if answer.status_code != 200:
                print(f"the job failed ({answer.status_code}): {body.get('error')}", file=sys.stderr)
                return 1
            options.output.write_bytes(base64.b64decode(body["video"]))
            took = time.monotonic() - started
            print(f"{options.output}: {body['duration_s']} s of video from replica {body['replica']} in {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
