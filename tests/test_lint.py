"""Lint in the test command: ruff, mypy, hadolint, and Compose's own check of compose.yaml."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from stack import ROOT, Stack, compose_command, run

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def test_ruff():
    # --no-cache: a stale cache once passed here and failed on a clean clone.
    run([tool("ruff"), "check", "--no-cache", str(ROOT)], cwd=ROOT)


def test_mypy():
    """The package's and the WSGI scripts' types, strict ([tool.mypy] in pyproject.toml)."""
    # No cache, as for ruff: the result must be a clean clone's.
    run([tool("mypy"), "--no-incremental", "--cache-dir=/dev/null"], cwd=ROOT)


def test_hadolint():
    dockerfiles = [
        str(ROOT / "Dockerfile"),
        str(ROOT / "tests" / "postgres" / "Dockerfile"),
        str(ROOT / "tests" / "haproxy" / "Dockerfile"),
    ]
    run([tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), *dockerfiles], cwd=ROOT)


def test_compose_config():
    assert compose_command()
    result = Stack(project="tblint", port=8080, image="trac-breezy:lint").compose("config", "-q")
    assert result.returncode == 0
