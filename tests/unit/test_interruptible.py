"""A Ctrl-C (SIGINT) always stops the command line's asynchronous work, even when the running code swallows the
cancellation that plain `asyncio.run` turns it into (the CLI once finished and wrote the video after a Ctrl-C)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from longcat_avatar.interruptible import run_interruptibly

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs POSIX signals")

LOST_SIGNAL_S = 60  # how long the coroutine waits for a Ctrl-C that never comes: the test then fails, not hangs


@pytest.fixture
def command_line_sigint() -> Iterator[None]:
    """Python's own SIGINT handler, as a command line has it (other tests' libraries may have installed theirs)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def ctrl_c_while_swallowing_cancellation(cleaned: list[str]) -> str:
    """Press Ctrl-C on ourselves, then wait in code that turns a cancellation into a normal return."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(LOST_SIGNAL_S)
    except asyncio.CancelledError:
        return "finished as if nothing happened"
    finally:
        cleaned.append("clean-up ran")
    return "the Ctrl-C was lost"


def test_ctrl_c_raises_keyboard_interrupt_whatever_the_coroutine_does(command_line_sigint: None) -> None:
    cleaned: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run_interruptibly(ctrl_c_while_swallowing_cancellation(cleaned))
    assert cleaned == ["clean-up ran"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored for the rest of the program


def test_a_normal_run_returns_its_result(command_line_sigint: None) -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert run_interruptibly(answer()) == 42
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_callers_own_handler_is_kept(command_line_sigint: None) -> None:
    def own(signum: int, frame: object) -> None:
        """An embedding program's handler."""

    signal.signal(signal.SIGINT, own)

    async def answer() -> int:
        return 7

    assert run_interruptibly(answer()) == 7 and signal.getsignal(signal.SIGINT) is own
