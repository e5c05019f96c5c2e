"""Write the example workflows: `workflows/<name>_api.json` (API format) and `workflows/<name>.json` (UI format).

The UI format is produced by the ComfyUI frontend itself (`app.loadApiJson` then `graph.serialize()` in headless
Chromium against a temporary ComfyUI server with this pack), so it is exactly what the frontend loads and saves.
Run from the repository root: `python workflows/tools/export.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).parent)]

from graphs import WORKFLOWS  # noqa: E402

from support.browser import open_page  # noqa: E402
from support.comfy_server import remove_base_dir, start_server  # noqa: E402

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


def note_for(name: str, doc: str) -> str:
    """The Markdown note shown beside the graph: what it does and which files it needs where."""
    return (
        f"## {name}\n\n{doc}\n\n"
        "**Model files** (`ComfyUI/models/longcat/`, as the Hugging Face repositories ship them):\n"
        "- `LongCat-Video/` (vae, text_encoder, tokenizer): https://huggingface.co/meituan-longcat/LongCat-Video\n"
        "- `LongCat-Video-Avatar-1.5/` (base_model or base_model_int8, lora, whisper-large-v3): "
        "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar-1.5\n"
        "- `LongCat-Video-Avatar/` (avatar_single, avatar_multi, chinese-wav2vec2-base): "
        "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar\n\n"
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


def main() -> None:
    """Export every workflow in both formats."""
    server = start_server()
    try:
        with open_page(server.url) as page:
            page.wait_for_function("() => window.__longcatAvatar && window.__longcatAvatar.loaded === true")
            for name, build in WORKFLOWS.items():
                api = build()
                (WORKFLOW_DIR / f"{name}_api.json").write_text(json.dumps(api, indent=2) + "\n")
                note = note_for(name, " ".join((build.__doc__ or "").split()))
                ui = strip_nulls(page.evaluate(LOAD_AND_SERIALIZE, [api, note, NOTE_WIDTH]))
                (WORKFLOW_DIR / f"{name}.json").write_text(json.dumps(ui, indent=2) + "\n")
                print(f"wrote {name}.json and {name}_api.json ({len(api)} nodes)")
    finally:
        server.stop()
        remove_base_dir(server)


if __name__ == "__main__":
    main()
