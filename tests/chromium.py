"""Render a self-contained page in headless Chromium (Debian's, which `make test` installs):
what a person opening a report would see, and everything the page asked for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def render(page_file: Path) -> tuple[list[str], list[tuple[str, float, float]]]:
    """(every URL the page requested, each <svg>'s aria-label, width and height as drawn);
    skips the test where Chromium is missing."""
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
            page.goto(page_file.as_uri())
            drawn = []
            for svg in page.locator("svg").all():
                box = svg.bounding_box()
                drawn.append((svg.get_attribute("aria-label") or "",
                              box["width"] if box else 0.0, box["height"] if box else 0.0))
        finally:
            browser.close()
    return asked, drawn
