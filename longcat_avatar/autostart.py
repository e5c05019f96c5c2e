"""A server for `generate` and `batch`: the one at the URL when it answers, else a headless ComfyUI started here.

The started ComfyUI is the one this pack is installed in (`ComfyUI/custom_nodes/<pack>/`) or `--comfyui DIR`, run by
`--comfyui-python` (default: this Python) on a free port, reading that ComfyUI's models/ folder; it is stopped when
the command ends, also on Ctrl-C. `--server URL` never starts one.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from collections.abc import Iterator

from .comfy_http import ComfyConnection, server_url
from .comfy_launcher import ComfyLauncher, find_comfyui
from .errors import ServerUnavailableError
from .interruptible import run_interruptibly


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--comfyui, --comfyui-python and --comfyui-args: how to start ComfyUI when nothing answers."""
    add = parser.add_argument
    add(
        "--comfyui",
        metavar="DIR",
        help="the ComfyUI folder to start when nothing answers at the server URL "
        "(default: the ComfyUI whose custom_nodes holds this pack, or $COMFYUI_DIR)",
    )
    add(
        "--comfyui-python",
        metavar="PYTHON",
        default=sys.executable,
        help="the Python that runs the started ComfyUI (default: this one)",
    )
    add(
        "--comfyui-args",
        metavar="ARGS",
        default="",
        help='extra command-line options of the started ComfyUI, written with = (--comfyui-args="--lowvram")',
    )


async def _answers(url: str) -> bool:
    """True when a ComfyUI answers at `url`."""
    async with ComfyConnection(url) as connection:
        try:
            await connection.check()
        except ServerUnavailableError:
            return False
    return True


@contextlib.contextmanager
def server_for(args: argparse.Namespace) -> Iterator[str]:
    """The URL to run jobs on: --server as given, else $COMFYUI_URL or the default when a ComfyUI answers there,
    else a ComfyUI started for the command (stopped when the block ends, however it ends)."""
    if args.server:
        yield args.server
        return
    url = server_url(None)
    if run_interruptibly(_answers(url)):
        yield url
        return
    comfyui = find_comfyui(args.comfyui)
    if comfyui is None:
        raise ServerUnavailableError(
            url,
            "nothing answers there, and no ComfyUI folder was found to start one: "
            "pass --comfyui DIR, or install this pack in ComfyUI/custom_nodes",
        )
    launcher = ComfyLauncher(
        comfyui, python=args.comfyui_python, extra_args=shlex.split(args.comfyui_args), models_from=comfyui / "models"
    )
    print(
        f"nothing answers at {url}: starting ComfyUI from {comfyui} on {launcher.url} (log: {launcher.log_path})",
        file=sys.stderr,
        flush=True,
    )
    with launcher:
        print(
            f"ComfyUI started on {launcher.url} (pid {launcher.pid}); it stops when this command ends",
            file=sys.stderr,
            flush=True,
        )
        yield launcher.url
