"""A real browser for end-to-end tests: Debian's Chromium, headless.

Pages are checked as a visitor sees them (a screenshot, kept in the test's
temporary directory) and as the browser built them (`--dump-dom`), not only
by status codes. Chromium is installed with apt when missing and the tests
run as root (as scripts/test installs Docker); it runs as root only with
`--no-sandbox`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser")
WINDOW = "1280,900"


def _found() -> str | None:
    return next((path for name in NAMES if (path := shutil.which(name))), None)


def chromium() -> str:
    """The browser's path; installs Debian's `chromium` when it is missing."""
    found = _found()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("Chromium is missing; install Debian's `chromium` (apt-get install chromium)")
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        result = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed: {result.stderr[-2000:]}")
    print(f"installed Debian's chromium in {time.monotonic() - started:.0f} s")
    found = _found()
    assert found, "apt-get installed chromium, but no chromium command is on PATH"
    return found


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def screenshot(browser: str, url: str, path: Path) -> Path:
    """A PNG of `url` in a 1280x900 window; its path is printed for the test's output."""
    result = _run(
        browser,
        path.with_suffix(".profile"),
        f"--screenshot={path}",
        f"--window-size={WINDOW}",
        url,
    )
    assert path.is_file() and path.stat().st_size > 0, result.stderr[-2000:]
    print(f"screenshot of {url}: {path}")
    return path


def dom(browser: str, url: str, profile: Path) -> str:
    """The document as the browser built it."""
    result = _run(browser, profile, "--dump-dom", url)
    assert result.returncode == 0 and "<html" in result.stdout, result.stderr[-2000:]
    return result.stdout
