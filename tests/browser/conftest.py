"""Headless Chromium for the pages people click through: Debian's browser, driven by Playwright.

The browser is the system's (`/usr/bin/chromium`, installed by `.ci/run` with apt-get); Playwright's
own browser download cannot run here. Screenshots land in `test-artifacts/` (or
`HONNIN_TEST_ARTIFACTS`), which CI keeps. Without Chromium the tests skip; under CI=true they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the closed network refuses its background connections
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A folder per test for its screenshots."""
    base = Path(os.environ.get("HONNIN_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder = base / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """A fresh headless Chromium (Playwright's async API) with an empty profile."""
    executable = chromium_path()
    if executable is None:
        require("Chromium", "apt-get install chromium chromium-driver fonts-ipafont-gothic")
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        require("playwright", "pip install -e '.[test]'")
        raise
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()
