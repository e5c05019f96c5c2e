"""Headless Chromium driven by Python playwright (the system's chromium, never `playwright install`).

The workflow tools serialise graphs through the real ComfyUI frontend with it; the browser tests open pages with it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",  # the closed network refuses Chromium's background connections
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str:
    """The system's chromium program."""
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("chromium is not installed: install it (e.g. `apt-get install chromium`; CI does it)")
    return path


@contextmanager
def open_page(url: str, timeout_ms: int = 90_000) -> Iterator[Any]:
    """Yield a playwright page that has loaded `url` in a fresh headless Chromium profile."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="longcat-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
            )
            try:
                page = context.new_page()
                page.set_default_timeout(timeout_ms)
                page.goto(url, wait_until="domcontentloaded")
                yield page
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
