"""Write the example workflows: `workflows/<name>_api.json` (API format) and `workflows/<name>.json` (UI format).

The UI format is produced by the ComfyUI frontend itself (`app.loadApiJson` then `graph.serialize()` in headless
Chromium against a temporary ComfyUI server with this pack), so it is exactly what the frontend loads and saves.
Run from the repository root: `python workflows/tools/export.py [--comfyui DIR]` (default: $COMFYUI_DIR).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

from browser import open_page  # noqa: E402
from graphs import WORKFLOWS  # noqa: E402

from longcat_avatar.comfy_launcher import OFFLINE_ENV, ComfyLauncher, find_comfyui  # noqa: E402
from pipeline import model_catalogue as catalogue  # noqa: E402

WORKFLOW_DIR = ROOT / "workflows"
NOTE_WIDTH = 420  # px: wide enough for the model-file list

LOAD_AND_SERIALIZE = """
async ([api, note, width]) => {
  await window.app.loadApiJson(api, "workflow.json");
  const graph = window.app.graph;
  for (const node of graph.nodes) {
    const control = node.widgets?.find((w) => w.name === "control_after_generate");
    if (control) control.value = "fixed";  // examples stay reproducible; users switch to randomize at will
  }
  const right = Math.max(...graph.nodes.map((n) => n.pos[0] + n.size[0]));
  const memo = LiteGraph.createNode("MarkdownNote");
  memo.title = "About this workflow";
  memo.widgets[0].value = note;
  memo.pos = [right + 60, 100];
  memo.size = [width ?? 420, 460];
  graph.add(memo);
  return graph.serialize();
}
"""


def model_file_lines() -> str:
    """One Markdown line per hub repository: its folders the workflows use, and its download page."""
    c, lines = catalogue, []
    for repo in (c.REPO_BASE, c.REPO_V15, c.REPO_V10):
        folders = dict.fromkeys(e.path.split("/")[0] for e in c.OFFICIAL if e.repo == repo)
        if repo == c.UMT5.repo:
            folders[c.TOKENIZER_FOLDER] = None
        lines.append(f"- `{repo}/` ({', '.join(folders)}): {c.HUB}{repo}\n")
    return "".join(lines)


def note_for(name: str, doc: str) -> str:
    """The Markdown note shown beside the graph: what it does and which files it needs where."""
    return (
        f"## {name}\n\n{doc}\n\n"
        f"**Model files** (`ComfyUI/models/{catalogue.LONGCAT_FOLDER}/`, as the Hugging Face repositories ship them):\n"
        f"{model_file_lines()}\n"
        "Put the portrait and the speech in `ComfyUI/input/` (or pick them in the Load nodes). The MP4 lands in "
        "`ComfyUI/output/LongCatAvatar/`."
    )


def strip_nulls(value: Any) -> Any:
    """Drop null-valued keys the frontend's reactive objects add (except `link`, which LiteGraph reads)."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None or k == "link"}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


@contextmanager
def frontend(comfyui: Path | None) -> Iterator[Any]:
    """A page of the ComfyUI frontend, served by a temporary ComfyUI with this pack, once the pack's script ran."""
    folder = find_comfyui(comfyui)
    if folder is None:
        raise SystemExit("ComfyUI not found: pass --comfyui DIR or set COMFYUI_DIR")
    with ComfyLauncher(folder, extra_args=["--cpu"], env=OFFLINE_ENV) as server, open_page(server.url) as page:
        page.wait_for_function("() => window.__longcatAvatar && window.__longcatAvatar.loaded === true")
        yield page


def ui_format(page: Any, api: dict[str, Any], note: str) -> dict[str, Any]:
    """The UI format of an API-format graph, as the frontend serialises it, with the note beside it."""
    return strip_nulls(page.evaluate(LOAD_AND_SERIALIZE, [api, note, NOTE_WIDTH]))


def comfyui_argument() -> Path | None:
    """The --comfyui option of the workflow tools."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", type=Path, help="the ComfyUI folder (default: $COMFYUI_DIR)")
    return parser.parse_args().comfyui


def main() -> None:
    """Export every workflow in both formats."""
    with frontend(comfyui_argument()) as page:
        for name, build in WORKFLOWS.items():
            api = build()
            (WORKFLOW_DIR / f"{name}_api.json").write_text(json.dumps(api, indent=2) + "\n")
            ui = ui_format(page, api, note_for(name, " ".join((build.__doc__ or "").split())))
            (WORKFLOW_DIR / f"{name}.json").write_text(json.dumps(ui, indent=2) + "\n")
            print(f"wrote {name}.json and {name}_api.json ({len(api)} nodes)")


if __name__ == "__main__":
    main()
