"""deploy/serve_config.yaml is what `serve build` writes for the application today, Serve accepts it, and it asks for
one GPU and one job at a time per replica; the application's arguments are checked before anything starts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from deploy.settings import ServeSettings
from longcat_avatar.comfy_launcher import PACK_ROOT

CONFIG = PACK_ROOT / "deploy" / "serve_config.yaml"
BUILD_TIMEOUT_S = 300  # `serve build` imports Ray and the app: seconds, a few minutes on a busy 2-core machine


def test_the_checked_in_config_is_what_serve_build_writes(tmp_path: Path) -> None:
    built = tmp_path / "serve_config.yaml"
    serve = Path(sys.executable).with_name("serve")
    command = [str(serve), "build", "deploy.serve_app:app", "-o", str(built)]
    subprocess.run(command, cwd=PACK_ROOT, check=True, timeout=BUILD_TIMEOUT_S, capture_output=True)
    assert built.read_text() == CONFIG.read_text(), "deploy/serve_config.yaml is stale: run the command above"


def test_serve_accepts_the_config_with_one_gpu_and_one_job_per_replica() -> None:
    config = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    (application,) = config.applications
    assert application.import_path == "deploy.serve_app:app"
    deployments = {deployment.name: deployment for deployment in application.deployments}
    replica = deployments["AvatarReplica"]
    assert replica.ray_actor_options.num_gpus == 1 and replica.max_ongoing_requests == 1
    assert deployments["AvatarIngress"].num_replicas == 1  # the job records live in the one ingress


def test_arguments_from_the_command_line_become_typed_settings() -> None:
    settings = ServeSettings.from_args(
        {"replicas": "2", "gpus_per_replica": "0", "warmup": "false", "extra_custom_nodes": "/a", "max_jobs": "6"}
    )
    assert (settings.replicas, settings.gpus_per_replica, settings.warmup) == (2, 0.0, False)
    assert settings.extra_custom_nodes == ("/a",)
    assert ServeSettings.from_args(settings.as_args()) == settings  # what the ingress and replicas receive


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"replica": 2}, "unknown deployment argument(s) ['replica']"),
        ({"replicas": 3, "max_jobs": 2}, "max_jobs (2) must be at least replicas (3)"),
        ({"models_dir": "/no/such/folder"}, "models_dir /no/such/folder is not a folder"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(args: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ServeSettings.from_args(args)
