"""End to end: a mounted tree of branches in every format Breezy 3.3 reads
(issue 20, "Old branch formats"), made by `brz init --format=F`.

Each is read over bzr+http:// and http://, a commit in a checkout lands, a
push lands, and Trac shows its history; a weave branch (bzr 0.x), which no
smart server can lock, refuses writes with one line naming `brz upgrade`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import new_stack
from old_branches import ALL_IN_ONE, FORMATS, SHARED, commit, make_old_tree
from stack import ADMIN, Brz, Stack, write_credentials

pytestmark = pytest.mark.e2e
WWW_DATA = 33
ENV = "/var/lib/trac/old"
UPGRADE_LINE = re.compile(r"^brz: ERROR: Cannot lock this branch: .*`brz upgrade --format=2a`")


def chown_tree(root: Path, uid: int) -> None:
    for directory, subdirs, files in os.walk(root):
        for entry in [directory, *(os.path.join(directory, n) for n in subdirs + files)]:
            os.lchown(entry, uid, uid)


@pytest.fixture(scope="module")
def old_stack(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The image on a mounted tree of old formats, with a project that shows them."""
    tree = tmp_path_factory.mktemp("old-tree")
    make_old_tree(tree, Brz(tmp_path_factory.mktemp("maker-home")))
    chown_tree(tree, WWW_DATA)
    stack = new_stack(
        image,
        "oldbranches",
        BZR_DATA=str(tree),
        TRAC_PROJECTS="old",
        ADMIN_USER=ADMIN[0],
        ADMIN_PASSWORD=ADMIN[1],
    )
    try:
        stack.up()

        def trac_admin(*args: str) -> None:
            stack.exec("trac-admin", ENV, *args, user="www-data")

        trac_admin("config", "set", "components", "trac_breezy.*", "enabled")
        trac_admin("repository", "add", "branches", "/srv/bzr/branches", "bzr")
        trac_admin("repository", "add", "repos", "/srv/bzr/repos", "bzr")
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)


@pytest.fixture
def writer(old_stack: Stack, tmp_path: Path) -> Brz:
    client = Brz(tmp_path / "writer-home")
    write_credentials(client, old_stack.port, *ADMIN)
    return client


def last_error(result) -> str:
    return [line for line in result.stderr.splitlines() if line.startswith("brz: ERROR")][-1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_old_format_is_read_over_bzr_http_and_http(
    old_stack: Stack, anonymous_brz: Brz, tmp_path: Path, fmt: str
):
    places = [f"branches/{fmt}"] + ([f"repos/{fmt}/trunk"] if fmt in SHARED else [])
    for place in places:
        for scheme in ("bzr+http", "http"):
            target = tmp_path / f"{scheme}-{place.replace('/', '-')}"
            anonymous_brz("branch", old_stack.bzr_url(place, scheme), str(target))
            log = anonymous_brz("log", "--line", str(target)).stdout
            expected = f"second commit of {fmt}" if place.startswith("branches") else "trunk of"
            assert expected in log, log
        log = anonymous_brz("log", "--line", old_stack.bzr_url(place)).stdout
        assert f"of {fmt}" in log, log


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_checkout_commit_lands_or_names_brz_upgrade(
    old_stack: Stack, writer: Brz, tmp_path: Path, fmt: str
):
    url = old_stack.bzr_url(f"branches/{fmt}")
    checkout = tmp_path / "checkout"
    writer("checkout", url, str(checkout))
    (checkout / "CHECKOUT").write_text("from a checkout\n")
    writer("add", "-q", cwd=checkout)
    result = writer("commit", "-m", f"checkout commit into {fmt}", cwd=checkout, check=False)
    if fmt in ALL_IN_ONE:
        assert result.returncode == 3
        assert UPGRADE_LINE.match(last_error(result)), result.stderr
        assert writer.revno(url) == 2
    else:
        assert result.returncode == 0, result.stderr
        assert writer.revno(url) == 3
        assert "checkout commit into" in writer("log", "-r-1", "--line", url).stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_push_lands_or_names_brz_upgrade(old_stack: Stack, writer: Brz, tmp_path: Path, fmt: str):
    place = f"repos/{fmt}/trunk" if fmt in SHARED else f"branches/{fmt}"
    url = old_stack.bzr_url(place)
    before = writer.revno(url)
    local = tmp_path / "local"
    writer("branch", url, str(local))
    commit(writer, local, "PUSHED", f"pushed into {fmt}")
    result = writer("push", url, cwd=local, check=False)
    if fmt in ALL_IN_ONE:
        assert result.returncode == 3
        assert UPGRADE_LINE.match(last_error(result)), result.stderr
        assert writer.revno(url) == before
    else:
        assert result.returncode == 0, result.stderr
        assert writer.revno(url) == before + 1


def test_trac_shows_the_history_of_each_old_format(old_stack: Stack):
    missing = []
    deadline = time.monotonic() + 60
    for fmt in FORMATS:
        while True:
            status, _, page = old_stack.get(f"/trac/old/log/branches/{fmt}")
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # Trac syncs its cache of a new repository on first sight
        if status != 200 or f"second commit of {fmt}" not in page:
            missing.append(f"{fmt}: log {status}")
        status, _, page = old_stack.get(f"/trac/old/browser/branches/{fmt}/NEWS")
        if status != 200 or f"second commit of {fmt}" not in page:
            missing.append(f"{fmt}: browser {status}")
    assert not missing, missing
