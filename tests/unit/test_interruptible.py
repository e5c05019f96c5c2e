"""A Ctrl-C (SIGINT) always stops the command line's asynchronous work, even when the running code swallows the
cancellation that plain `asyncio.run` turns it into (the CLI once finished and wrote the video after a Ctrl-C)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from longcat_avatar.interruptible import run_interruptibly

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs POSIX signals")


async def ctrl_c_while_swallowing_cancellation(cleaned: list[str]) -> str:
    """Press Ctrl-C on ourselves, then wait in code that turns a cancellation into a normal return."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        return "finished as if nothing happened"
    finally:
        cleaned.append("clean-up ran")
    return "slept an hour"


def test_ctrl_c_raises_keyboard_interrupt_whatever_the_coroutine_does() -> None:
    cleaned: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run_interruptibly(ctrl_c_while_swallowing_cancellation(cleaned))
    assert cleaned == ["clean-up ran"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored for the rest of the program


def test_a_normal_run_returns_its_result() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert run_interruptibly(answer()) == 42
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
