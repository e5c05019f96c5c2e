"""The Modal app: GPU containers that each run one ComfyUI with this pack, a Volume with the weights, and a web endpoint
with the pack's contract in the job-id + poll form (deploy/modal_jobs.py).

    modal run -m deploy.modal_app::download_weights      # once: the v1.5 weights into the Volume (progress in the logs)
    modal deploy -m deploy.modal_app                     # the endpoint; POST /longcat/avatar, GET /longcat/avatar/{id}

(from the pack's folder; `-m`: the app imports its siblings in deploy/).

Containers scale to zero when idle and render one job at a time each (Modal's default of one input per container).
"""

# No `from __future__ import annotations` here: FastAPI reads the handlers' annotations (Request) at run time.
from pathlib import Path
from typing import Any

import modal

from longcat_avatar.comfy_launcher import PACK_ROOT

from .modal_jobs import Lookup, Spawn, render, state, submit
from .settings import DEFAULT_JOB_TIMEOUT_S, ROUTE, ServeSettings

APP_NAME = "longcat-avatar"
COMFYUI_REF = "v0.3.75"  # the ComfyUI release the pack is tested with (.ci/common.sh extracts the same release)
COMFYUI_DIR = "/opt/ComfyUI"
PACK_DIR = "/opt/longcat-avatar"  # outside ComfyUI's custom_nodes: the launcher links it into its own base folder
MODELS_DIR = "/models"  # the Volume; each container's ComfyUI reads it as its models/ (the loaders' models/longcat/)
VOLUME_NAME = "longcat-avatar-models"
# Modal's GPU types with their memory in GB (Modal's GPU documentation).
GPU_MEMORY_GB = {"T4": 16, "L4": 24, "A10G": 24, "L40S": 48, "A100-40GB": 40, "A100-80GB": 80, "H100": 80,
                 "H200": 141, "B200": 180}  # fmt: skip
# An 80 GB A100, as the original service used: bf16 weights peak at ~42 GB for 10 s of 480p (int8 at ~26 GB;
# `python -m longcat_avatar estimate`), so either fits with room for 720p.
GPU = "A100-80GB"
SCALEDOWN_S = 300  # an idle container keeps its loaded weights for 5 minutes, then the app scales to zero
MAX_CONTAINERS = 10  # at most this many GPUs at once: a bound on the bill
JOB_TIMEOUT_S = int(DEFAULT_JOB_TIMEOUT_S)
STARTUP_TIMEOUT_S = 1200  # ComfyUI's start and the warm-up that reads ~30 GB of weights from the Volume
DOWNLOAD_TIMEOUT_S = 4 * 3600  # ~40 GB from the Hugging Face hub
SETTINGS = ServeSettings(comfyui_dir=COMFYUI_DIR, models_dir=MODELS_DIR, start_timeout_s=STARTUP_TIMEOUT_S)

image = (
    modal.Image.debian_slim(python_version="3.11")
    .apt_install("git", "ffmpeg", "espeak-ng")
    .run_commands(
        f"git clone --depth 1 --branch {COMFYUI_REF} https://github.com/comfyanonymous/ComfyUI {COMFYUI_DIR}",
        f"pip install -r {COMFYUI_DIR}/requirements.txt",
    )
    .pip_install_from_requirements(str(PACK_ROOT / "requirements.txt"))
    .pip_install("fastapi[standard]", "requests")  # the web endpoint and the container's calls to its ComfyUI
    .env({"COMFYUI_DIR": COMFYUI_DIR, "PYTHONPATH": PACK_DIR})  # `deploy` and `longcat_avatar` import from the pack
    .add_local_dir(PACK_ROOT, PACK_DIR, ignore=[".git", "tests", "**/__pycache__"])
)
volume = modal.Volume.from_name(VOLUME_NAME, create_if_missing=True)
app = modal.App(APP_NAME, image=image)


@app.cls(
    gpu=GPU,
    volumes={MODELS_DIR: volume},
    timeout=JOB_TIMEOUT_S,
    startup_timeout=STARTUP_TIMEOUT_S,
    scaledown_window=SCALEDOWN_S,
    min_containers=0,
    max_containers=MAX_CONTAINERS,
)
class AvatarGPU:
    """One GPU container: its ComfyUI starts (and warms up) once, then renders jobs one at a time."""

    @modal.enter()
    def start(self) -> None:
        """Start ComfyUI with the Volume as its models folder and load the weights with the warm-up job."""
        from .comfy_child import ComfyChild

        self.child = ComfyChild(SETTINGS, "modal").start()

    @modal.method()
    def render(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """One job through this container's ComfyUI."""
        return render(self.child, body, timeout_s)

    @modal.exit()
    def stop(self) -> None:
        """Stop ComfyUI when the container goes."""
        self.child.stop()


def _spawn(body: dict[str, Any], timeout_s: float) -> str:
    """Queue the job on a GPU container; Modal's call id is the job id."""
    return AvatarGPU().render.spawn(body, timeout_s).object_id


def _lookup(job_id: str) -> tuple[str, dict[str, Any] | None]:
    """Where a job is: Modal's FunctionCall, read without waiting."""
    errors = modal.exception
    try:
        call = modal.FunctionCall.from_id(job_id)
        return "done", call.get(timeout=0)
    except (errors.NotFoundError, errors.OutputExpiredError, errors.InvalidError):
        return "unknown", None
    except errors.FunctionTimeoutError:
        return "done", {"status": 408, "body": {"error": f"the job ran past the container's {JOB_TIMEOUT_S} s"}}
    except errors.TimeoutError:  # no result yet (the base of the two above, so caught after them)
        return "running", None
    except Exception as error:  # the render itself raised (e.g. the container's ComfyUI died): the job failed
        return "done", {"status": 500, "body": {"error": f"{type(error).__name__}: {error}"}}


def make_web_app(spawn: Spawn, lookup: Lookup) -> Any:
    """The FastAPI app of the endpoint, with the given job hand-over and lookup."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    api = FastAPI(title="LongCat Avatar on Modal")

    async def post_avatar(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError as error:
            return JSONResponse({"error": f"the body is not valid JSON: {error}"}, status_code=400)
        status, answer = submit(body, spawn, JOB_TIMEOUT_S)
        return JSONResponse(answer, status_code=status)

    async def get_job(job_id: str) -> JSONResponse:
        status, answer = state(job_id, lookup)
        return JSONResponse(answer, status_code=status)

    api.add_api_route(ROUTE, post_avatar, methods=["POST"])
    api.add_api_route(ROUTE + "/{job_id}", get_job, methods=["GET"])
    return api


@app.function()  # a CPU container: it validates, hands jobs over and answers polls
@modal.asgi_app()
def web() -> Any:
    """The endpoint: POST /longcat/avatar (202 with a job id), GET /longcat/avatar/{job_id}."""
    return make_web_app(_spawn, _lookup)


@app.function(volumes={MODELS_DIR: volume}, timeout=DOWNLOAD_TIMEOUT_S)
def download_weights(version: str = "1.5", fmt: str = "", with_lora: bool = False) -> None:
    """Fill the Volume with one version's weights (the pack's downloader: verified, resumable, progress in the log)."""
    from longcat_avatar.downloads import Choice, default_format, download

    choice = Choice(version, fmt or default_format(version), with_lora)
    download(choice, Path(MODELS_DIR), on_event=lambda event: print(f"download: {event['event']}", flush=True))
    volume.commit()
