"""Fixtures for the end-to-end tests: one built image, one running stack."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import Brz, Stack, compose_command, free_port, require_docker

IMAGE = "trac-breezy:test"


@pytest.fixture(scope="session")
def image() -> str:
    """The image, built from the working tree by Compose, as `docker compose up` does."""
    require_docker()
    started = time.monotonic()
    Stack(project="tbtestbuild", port=0, image=IMAGE).compose("build", timeout=1800)
    print(f"built {IMAGE} in {time.monotonic() - started:.0f} s")
    return IMAGE


def new_stack(image: str, name: str, **env: str) -> Stack:
    stack = Stack(
        project=f"tbtest{name}{os.getpid()}", port=free_port(), image=image, env_overrides=env
    )
    stack.compose("down", "-v", "--remove-orphans", check=False)
    return stack


@pytest.fixture(scope="module")
def stack(image: str) -> Iterator[Stack]:
    """compose.yaml up with writes open, on fresh volumes; removed afterwards."""
    assert compose_command()
    stack = new_stack(image, "main", BZR_ALLOW_WRITES="true")
    try:
        seconds = stack.up()
        print(f"healthy {seconds:.1f} s after `up`")
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)


@pytest.fixture
def brz(tmp_path: Path) -> Brz:
    return Brz(tmp_path / "home")
