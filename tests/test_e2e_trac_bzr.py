"""End to end: Trac shows the Bazaar tree, and a pushed "fixes #N" closes ticket N."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from stack import Brz, Stack, new_ticket, run, side_container

pytestmark = pytest.mark.e2e

ENV = "/var/lib/trac/code"


def trac_admin(stack: Stack, *args: str) -> str:
    return stack.exec("trac-admin", ENV, *args, user="www-data").stdout


def test_push_closes_ticket_and_trac_browses_the_branch(stack: Stack, brz: Brz, tmp_path: Path):
    brz("init-shared-repo", stack.bzr_url("code"))
    trac_admin(stack, "initenv", "Code Project", "sqlite:db/trac.db")
    trac_admin(stack, "config", "set", "components", "trac_breezy.*", "enabled")
    trac_admin(stack, "config", "set", "components", "tracopt.ticket.commit_updater.*", "enabled")
    trac_admin(stack, "repository", "add", "(default)", "/srv/bzr/code", "bzr")
    assert new_ticket(stack, ENV, "It crashes") == 1

    local = tmp_path / "work"
    brz("init", str(local))
    (local / "README").write_text("hello\n")
    brz("add", cwd=local)
    brz("commit", "-m", "Start", cwd=local)
    brz("push", stack.bzr_url("code/trunk"), cwd=local)
    (local / "crash_fix.py").write_text("print('no more crash')\n")
    brz("add", cwd=local)
    brz("commit", "-m", "Stop the crash, fixes #1", cwd=local)
    brz("push", cwd=local)

    deadline = time.monotonic() + 30
    while True:
        status, _, page = stack.get("/trac/code/ticket/1")
        if status == 200 and "closed" in page and "Stop the crash" in page:
            break
        assert time.monotonic() < deadline, page[-3000:]
        time.sleep(0.5)
    assert 'href="/trac/code/changeset/' in page  # the commit is linked

    status, _, browser = stack.get("/trac/code/browser/trunk")
    assert status == 200 and "crash_fix.py" in browser
    status, _, source = stack.get("/trac/code/browser/trunk/crash_fix.py")
    assert status == 200 and "no more crash" in source


def test_trac_repositories_connects_a_project_at_start(image: str, stack: Stack, tmp_path: Path):
    """On the data of the test above: a second container adds repository `all`.

    The stack's own container stops first: two containers on the same SQLite
    projects are refused (trac_breezy/startup/sqlite_guard.py)."""
    stack.compose("stop", "web")
    name, other = side_container(
        image,
        {"TRAC_REPOSITORIES": "code:all=code"},
        {stack.volume("trac"): "/var/lib/trac", stack.volume("bzr"): "/srv/bzr"},
    )
    try:
        deadline = time.monotonic() + 60
        while other_status(other) != 200:
            assert time.monotonic() < deadline, run(["docker", "logs", name]).stderr[-3000:]
            time.sleep(0.5)
        logs = run(["docker", "logs", name]).stderr
        assert "code: added repository all at /srv/bzr/code" in logs
        status, _, page = other.get("/trac/code/browser/all/trunk")
        assert status == 200 and "crash_fix.py" in page
    finally:
        run(["docker", "rm", "-f", name], check=False)
        stack.compose("start", "web")


def other_status(other: Stack) -> int:
    try:
        return other.get("/trac/")[0]
    except OSError:
        return 0
