"""Run a coroutine to completion from synchronous code with a Ctrl-C that always stops it.

`asyncio.run` turns SIGINT into a cancellation of the main task and raises KeyboardInterrupt only when that task
ends cancelled; a task that finishes at that moment (an `asyncio.wait_for` whose inner future just completed, a
library that catches the cancellation) returns normally and the Ctrl-C is lost: the command goes on and writes its
video. Here SIGINT raises KeyboardInterrupt in the running code itself, as before Python 3.11; `asyncio.run` then
cancels the remaining tasks, so their `except asyncio.CancelledError` clean-up (interrupting the server's prompt)
still runs.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_interruptibly(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)`, where a Ctrl-C raises KeyboardInterrupt however the coroutine handles cancellation."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    if not in_main_thread or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return asyncio.run(coroutine)  # signals can only be set in the main thread; keep a caller's own handler
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    try:
        return asyncio.run(coroutine)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
