"""Shared fixtures: one built image and one running stack for the end-to-end
tests; a smart server without Apache and an isolated Breezy for the unit tests."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from smart_harness import Server
from stack import ADMIN, Brz, Stack, compose_command, free_port, require_docker, write_credentials

from trac_breezy.setenv import READ_WRITE

# One tag per checkout may be asked for (TRAC_BREEZY_TEST_IMAGE), so that two
# working trees on one engine never test each other's image.
IMAGE = os.environ.get("TRAC_BREEZY_TEST_IMAGE", "trac-breezy:test")


@pytest.fixture(scope="session")
def image() -> str:
    """The image, built from the working tree by Compose, as `docker compose up` does."""
    require_docker()
    started = time.monotonic()
    project = "tbtestbuild" + re.sub("[^a-z0-9]", "", IMAGE)
    Stack(project=project, port=0, image=IMAGE).compose("build", timeout=1800)
    print(f"built {IMAGE} in {time.monotonic() - started:.0f} s")
    return IMAGE


def new_stack(image: str, name: str, **env: str) -> Stack:
    stack = Stack(
        project=f"tbtest{name}{os.getpid()}", port=free_port(), image=image, env_overrides=env
    )
    stack.compose("down", "-v", "--remove-orphans", check=False)
    return stack


@contextlib.contextmanager
def running_stack(image: str, name: str, **env: str) -> Iterator[Stack]:
    """compose.yaml up with `env` on fresh volumes; down, volumes and all, afterwards."""
    stack = new_stack(image, name, **env)
    try:
        seconds = stack.up()
        print(f"{name}: healthy {seconds:.1f} s after `up`")
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)


# The main stack's settings: writes open, two projects, the admin user.
MAIN_STACK_ENV = {
    "ADMIN_USER": ADMIN[0],
    "ADMIN_PASSWORD": ADMIN[1],
    "TRAC_PROJECTS": "delta,epsilon",
}


@pytest.fixture(scope="module")
def stack(image: str) -> Iterator[Stack]:
    """compose.yaml up with writes open, on fresh volumes; removed afterwards."""
    assert compose_command()
    with running_stack(image, "main", **MAIN_STACK_ENV) as stack:
        yield stack


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A folder that only the test's user can change, in a tree nobody else can
    change either (pytest's tmp_path lies under /tmp, which anybody may write):
    where root reads files named by settings (container/trusted_files.py)."""
    home = Path.home().resolve()
    if any(os.stat(p).st_mode & stat.S_IWOTH for p in (home, *home.parents)):
        pytest.skip(f"{home} or a parent is writable by anybody")
    directory = Path(tempfile.mkdtemp(dir=home, prefix=".trac-breezy-test-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The smart-server app with writes open, behind a stand-in for Apache."""
    root = tmp_path / "root"
    root.mkdir()
    served = Server(root, READ_WRITE)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def bzr_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An isolated HOME and committer identity for Breezy."""
    from test_bzr_storage import isolated_breezy

    home = tmp_path_factory.mktemp("home")
    with isolated_breezy(home):
        yield home


@pytest.fixture
def fresh_bzr_caches(bzr_home: Path) -> None:
    """The Bazaar backend's process-wide caches, emptied before a test."""
    from trac_breezy.trac_app.bzr.caches import clear_caches

    clear_caches()
