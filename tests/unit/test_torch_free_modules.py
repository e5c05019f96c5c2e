"""The facts the command-line client shares with the engine (limits, sizes, model catalogue, segment plan, espeak-ng)
import without torch or numpy, both the way the CLI imports them and as the pack's own subpackages inside ComfyUI."""

from __future__ import annotations

import subprocess
import sys

from support.comfy_server import REPO_ROOT
from support.suite_limits import UNIT_TIMEOUT_S

MODULES = (
    "longcat_avatar.cli",
    "longcat_avatar.doctor",
    "longcat_avatar.comfy_launcher",
    "pipeline.limits",
    "pipeline.model_catalogue",
    "pipeline.resolution",
    "pipeline.sampling.segments",
)
# The pack as a package named `pack` (its __init__, which needs ComfyUI, is not run): what ComfyUI's loader sets up.
PACKAGE = """import importlib.util
spec = importlib.util.spec_from_file_location("pack", {init!r}, submodule_search_locations=[{root!r}])
sys.modules["pack"] = importlib.util.module_from_spec(spec)
"""
CHECK = "import importlib, sys\n{imports}\nheavy = sorted({{'torch', 'numpy'}} & set(sys.modules))\nassert not heavy, heavy\n"


def _run(code: str, cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=UNIT_TIMEOUT_S)


def test_top_level_imports_stay_light() -> None:
    imports = "\n".join(f"importlib.import_module({name!r})" for name in MODULES)
    result = _run(CHECK.format(imports=imports), str(REPO_ROOT))
    assert result.returncode == 0, result.stderr


def test_imports_inside_the_pack_package_stay_light() -> None:
    """As ComfyUI loads the pack: one package (here named `pack`) with longcat_avatar and pipeline inside it."""
    imports = PACKAGE.format(init=str(REPO_ROOT / "__init__.py"), root=str(REPO_ROOT))
    imports += "\n".join(f"importlib.import_module('pack.{name}')" for name in MODULES)
    imports += "\nassert sys.modules['pack.longcat_avatar.shared'].limits is sys.modules['pack.pipeline.limits']"
    result = _run(CHECK.format(imports=imports), "/")
    assert result.returncode == 0, result.stderr
