"""Pushes update Trac: the push announcer (Trac's half of the tip-change hook).

The smart server reports tip changes without knowing Trac; `wsgi/bzr.wsgi`
registers `push_announcer.announce` as a listener, and the announcer tells
the Trac projects under the request's `trac.env_parent_dir` about the pushed
revisions, so commit messages update tickets.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from breezy.revision import NULL_REVISION
from smart_harness import Server, local_branch, with_credentials
from stack import ROOT, Brz

from trac_breezy.setenv import READ_WRITE, TRAC_ENV_PARENT_DIR_KEY
from trac_breezy.smart_server import tip_changes
from trac_breezy.smart_server.tip_changes import TipChange, on_tip_change
from trac_breezy.trac_app import push_announcer


@pytest.fixture
def listeners(monkeypatch) -> list:
    """Only the listeners a test registers itself (set aside afterwards)."""
    monkeypatch.setattr(tip_changes, "_listeners", [])
    return tip_changes._listeners


def test_bzr_wsgi_wires_tip_changes_to_the_announcer(listeners):
    script = runpy.run_path(str(ROOT / "wsgi" / "bzr.wsgi"))
    assert callable(script["application"])
    assert listeners == [push_announcer.announce]


@pytest.mark.parametrize(
    ("environ", "new_tip"),
    [
        ({}, b"rev-1"),
        ({TRAC_ENV_PARENT_DIR_KEY: ""}, b"rev-1"),
        ({TRAC_ENV_PARENT_DIR_KEY: "/var/lib/trac"}, NULL_REVISION),  # the branch was emptied
    ],
)
def test_nothing_to_announce(environ, new_tip, monkeypatch):
    monkeypatch.setattr(push_announcer, "_announce", pytest.fail)
    push_announcer.announce(TipChange("/srv/bzr/trunk", b"rev-0", new_tip, environ))
    assert push_announcer._pending == []


def new_trac_env(path: Path):
    from trac.env import Environment

    return Environment(
        str(path),
        create=True,
        options=[
            ("components", "trac_breezy.*", "enabled"),
            ("components", "tracopt.ticket.commit_updater.*", "enabled"),
        ],
    )


def test_trac_repositories_that_show_a_branch(tmp_path):
    from trac.versioncontrol.api import DbRepositoryProvider

    import trac_breezy.trac_app.bzr.connector  # noqa: F401 - registers the bzr connector

    trac_parent, bzr = tmp_path / "trac", tmp_path / "bzr"
    (bzr / "repo" / "trunk").mkdir(parents=True)
    (bzr / "other").mkdir()
    (trac_parent / "not-an-env").mkdir(parents=True)
    for name, repo_dir in (
        ("a", bzr / "repo"),
        ("b", bzr / "repo" / "trunk"),
        ("c", bzr / "other"),
    ):
        env = new_trac_env(trac_parent / name)
        DbRepositoryProvider(env).add_repository("code", str(repo_dir), "bzr")
        env.shutdown()

    found = push_announcer.trac_repositories(str(trac_parent), str(bzr / "repo" / "trunk"))
    assert found == [(str(trac_parent / "a"), "code"), (str(trac_parent / "b"), "code")]


def test_push_announces_revisions_to_trac(tmp_path, listeners):
    from trac.env import Environment
    from trac.ticket.model import Ticket
    from trac.versioncontrol.api import DbRepositoryProvider

    import trac_breezy.trac_app.bzr.connector  # noqa: F401 - registers the bzr connector (the image uses the entry point)

    on_tip_change(push_announcer.announce)  # as bzr.wsgi does
    root, trac_parent = tmp_path / "bzr", tmp_path / "trac"
    root.mkdir()
    trac_parent.mkdir()
    env = new_trac_env(trac_parent / "proj")
    ticket = Ticket(env)
    ticket.populate({"summary": "crash", "reporter": "someone", "status": "new"})
    ticket_id = ticket.insert()
    other = Ticket(env)
    other.populate({"summary": "referenced", "reporter": "someone", "status": "new"})
    other_id = other.insert()

    brz = Brz(tmp_path / "home")
    brz("init-shared-repo", str(root / "proj"))
    DbRepositoryProvider(env).add_repository("", str(root / "proj"), "bzr")
    env.shutdown()

    server = Server(root, READ_WRITE, trac_parent)
    try:
        with_credentials(brz, server, "alice", "wonderland")
        local = local_branch(brz, tmp_path / "local")
        brz("push", server.url("proj/trunk"), cwd=local)
        (local / "file").write_text("fixed\n")
        brz("commit", "-m", f"Fix the crash, fixes #{ticket_id}", cwd=local)
        (local / "file").write_text("more\n")
        brz("commit", "-m", f"Follow-up, refs #{other_id}", cwd=local)
        brz("push", cwd=local)
        push_announcer.wait_for_announcements()
    finally:
        server.stop()

    env = Environment(str(trac_parent / "proj"))
    fixed, referenced = Ticket(env, ticket_id), Ticket(env, other_id)
    assert fixed["status"] == "closed" and fixed["resolution"] == "fixed"
    assert referenced["status"] == "new"
    assert any("Follow-up" in str(change[4]) for change in referenced.get_changelog())
    comments = [str(c[4]) for c in fixed.get_changelog() if c[2] == "comment"]
    assert any("changeset:" in c and "Fix the crash" in c for c in comments), comments
