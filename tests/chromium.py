"""Pages in headless Chromium (Debian's, which `make test` installs), as a person opening them
would see them, with everything each page asked for."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


@contextlib.contextmanager
def chromium_page(url: str) -> Iterator[tuple[Any, list[str]]]:
    """(the page, loaded from `url`, and the URLs it has requested so far); skips the test
    where Chromium is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"needs Chromium at {CHROMIUM} (`make test` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            page = browser.new_page()
            asked: list[str] = []
            page.on("request", lambda req: asked.append(req.url))
            page.goto(url)
            yield page, asked
        finally:
            browser.close()


def render(page_file: Path) -> tuple[list[str], list[tuple[str, float, float]]]:
    """(every URL a saved page requested, each <svg>'s aria-label, width and height as
    drawn)."""
    with chromium_page(page_file.as_uri()) as (page, asked):
        drawn = []
        for svg in page.locator("svg").all():
            box = svg.bounding_box()
            drawn.append((svg.get_attribute("aria-label") or "",
                          box["width"] if box else 0.0, box["height"] if box else 0.0))
    return asked, drawn
