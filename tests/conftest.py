"""Fixtures for the end-to-end tests: one built image, one running stack."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import ADMIN, Brz, Stack, compose_command, free_port, require_docker, write_credentials

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
    stack = new_stack(
        image, "main", ADMIN_USER=ADMIN[0], ADMIN_PASSWORD=ADMIN[1], TRAC_PROJECTS="delta,epsilon"
    )
    try:
        seconds = stack.up()
        print(f"healthy {seconds:.1f} s after `up`")
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)


@pytest.fixture
def anonymous_brz(tmp_path: Path) -> Brz:
    """The brz client with no credentials at all."""
    return Brz(tmp_path / "anonymous-home")


@pytest.fixture
def brz(request: pytest.FixtureRequest, tmp_path: Path) -> Brz:
    """The brz client; with the admin's password for the module's stack, if any."""
    client = Brz(tmp_path / "home")
    if "stack" in request.fixturenames:
        write_credentials(client, request.getfixturevalue("stack").port, *ADMIN)
    return client
