"""Write the text-to-speech example: text → LongCat Avatar Text to Speech (espeak-ng) → the v1.5 avatar graph.

It is the v1.5 distilled single-speaker graph of `tools/graphs.py` with its Load Audio node replaced by the Text to
Speech node; any other node that outputs AUDIO plugs into the same socket. Run from the repository root:
`python workflows/tts_workflow.py [--comfyui DIR]` writes `longcat_avatar_v15_tts_api.json` and, through the ComfyUI frontend (as
`tools/export.py` does), the UI-format `longcat_avatar_v15_tts.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "workflows" / "tools")]

NAME = "longcat_avatar_v15_tts"
SPEECH_NODE = "6"  # the Load Audio node of the talking-head graph
TEXT = "Hello! I am a portrait that talks. This voice comes from espeak-ng, offline, on your own computer."


def tts_graph() -> dict[str, Any]:
    """The v1.5 distilled graph with its speech made from text by espeak-ng."""
    from graphs import node, v15_single_distilled

    from pipeline.model_catalogue import SEPARATION_OFF

    graph = v15_single_distilled()
    if graph[SPEECH_NODE]["class_type"] != "LoadAudio":
        raise RuntimeError(f"node {SPEECH_NODE} of the v1.5 graph is no longer Load Audio; update {__file__}")
    graph[SPEECH_NODE] = node(
        "LongCatAvatarTextToSpeech", "Text to Speech (espeak-ng)", text=TEXT, voice="en-us", rate=150, pitch=50
    )
    for combine in (n for n in graph.values() if n["class_type"] == "LongCatAvatarVideoCombine"):
        combine["inputs"]["filename_prefix"] = "LongCatAvatar/v15_tts"
    for encode in (n for n in graph.values() if n["class_type"] == "LongCatAvatarAudioEncode"):
        encode["inputs"]["separate_vocals"] = SEPARATION_OFF  # synthetic speech is clean: nothing to separate
    return graph


def main() -> None:
    """Write both formats."""
    from export import comfyui_argument, frontend, note_for, ui_format

    api = tts_graph()
    (ROOT / "workflows" / f"{NAME}_api.json").write_text(json.dumps(api, indent=2) + "\n")
    doc = (
        "v1.5, one speaker: the speech is made from the text by espeak-ng (offline; install it with your system's "
        "package manager). Replace the Text to Speech node by any node that outputs AUDIO."
    )
    with frontend(comfyui_argument()) as page:
        ui = ui_format(page, api, note_for(NAME, doc))
    (ROOT / "workflows" / f"{NAME}.json").write_text(json.dumps(ui, indent=2) + "\n")
    print(f"wrote {NAME}.json and {NAME}_api.json ({len(api)} nodes)")


if __name__ == "__main__":
    main()
