"""Debian's chromium, driven by Playwright, for the journeys: one page, loopback only, screenshots.

`browser_page(profile, shots, port)` launches ``/usr/bin/chromium`` (never a browser
Playwright downloads) headless with a fresh profile folder and yields a :class:`Browser`:
its ``page``, a ``shot(name)`` that saves a numbered screenshot for a person to look at,
and the record of every request that went anywhere but the server under test (the
journeys assert there were none; chromium cannot resolve any other host anyway).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    # Every host name but 127.0.0.1 fails to resolve: the page cannot reach the internet.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
VIEWPORT = {"width": 1400, "height": 1000}
ACTION_TIMEOUT_MS = 60_000       # one click, fill or wait for an element, on a loaded machine
NAVIGATION_TIMEOUT_MS = 120_000  # the first load of Lab's JavaScript bundles


def chromium_path() -> str:
    """Debian's chromium; without it the journeys fail in CI and are skipped elsewhere."""
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (`apt-get install chromium`; `make test` does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Browser:
    """The page of a journey (replaced when the journey moves to a new browser tab) and what it recorded."""

    page: object
    shots_dir: Path
    outside: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    taken: list[Path] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        """Save a screenshot of the whole window as ``NN-name.png`` (numbered in order taken, after
        those an earlier browser of the same journey took)."""
        path = self.shots_dir / f"{len(list(self.shots_dir.glob('*.png'))) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        self.taken.append(path)
        return path


@contextlib.contextmanager
def browser_page(profile: Path, shots_dir: Path, port: int, fresh_shots: bool = True):
    """A chromium page for the server on ``127.0.0.1:<port>``; requests elsewhere are recorded.

    ``fresh_shots`` removes the screenshots an earlier run left in ``shots_dir``; a second
    browser of the same journey keeps them and numbers its own after them.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    shots_dir.mkdir(parents=True, exist_ok=True)
    for old in shots_dir.glob("*.png") if fresh_shots else ():
        old.unlink()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        try:
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
            page = context.pages[0] if context.pages else context.new_page()
            browser = Browser(page, shots_dir)

            def record(request):
                parts = urlsplit(request.url)
                if parts.scheme not in ("data", "blob") and not (
                        parts.hostname == "127.0.0.1" and parts.port == port):
                    browser.outside.append(request.url)

            # Recorded from events, not intercepted with route(): a route handler runs only
            # while Python is inside a Playwright call, and Lab stalls while the test polls.
            context.on("request", record)
            page.on("console", lambda message: message.type == "error" and browser.console_errors.append(message.text))
            yield browser
        finally:
            context.close()
