"""The tip-change hook of the smart server, with pushes from the real brz client.

Listeners (Trac's push announcer in the image) get the local path of the
branch, its new revisions in order, and the environ of the pushing request;
one that fails must not fail the push.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from breezy.branch import Branch
from smart_harness import local_branch, with_credentials
from stack import Brz

from trac_breezy.setenv import SmartServerEnviron
from trac_breezy.smart_server import tip_changes
from trac_breezy.smart_server.tip_changes import TipChange, on_tip_change


@pytest.fixture
def changes(monkeypatch) -> list[TipChange]:
    """The changes a listener receives (the listeners of other tests are set aside)."""
    monkeypatch.setattr(tip_changes, "_listeners", [])
    received: list[TipChange] = []
    on_tip_change(received.append)
    return received


def revid(brz: Brz, branch: Path, revno: str | None = None) -> bytes:
    args = ["revision-info", "-d", str(branch)] + (["-r", revno] if revno else [])
    return brz(*args).stdout.split()[1].encode()


def branch_with_a_merge(brz: Brz, tmp_path: Path) -> tuple[Path, list[bytes]]:
    """trunk: 1, 2, 3 (merging feature's f1); returns trunk and [1, 2, 3, f1]."""
    trunk = local_branch(brz, tmp_path / "trunk")
    feature = tmp_path / "feature"
    brz("branch", str(trunk), str(feature))
    (feature / "feature").write_text("f\n")
    brz("add", cwd=feature)
    brz("commit", "-m", "f1", cwd=feature)
    (trunk / "file").write_text("two\n")
    brz("commit", "-m", "two", cwd=trunk)
    brz("merge", str(feature), cwd=trunk)
    brz("commit", "-m", "merge feature", cwd=trunk)
    return trunk, [revid(brz, trunk, r) for r in ("1", "2", "3")] + [revid(brz, feature)]


def test_listeners_get_the_new_revisions_and_the_request(changes, server, tmp_path):
    brz = Brz(tmp_path / "home")
    with_credentials(brz, server, "alice", "wonderland")
    trunk, expected = branch_with_a_merge(brz, tmp_path)

    brz("push", server.url("trunk"), cwd=trunk)
    [change] = changes
    assert change.branch_path == str(server.root.resolve() / "trunk")
    assert list(change.new_revisions(Branch.open)) == expected  # mainline oldest first, then merged
    assert change.environ["REMOTE_USER"] == "alice"
    assert change.environ[SmartServerEnviron.KEYS["root"]] == str(server.root)
    assert change.environ["SCRIPT_NAME"] == "/bzr/trunk/.bzr/smart"
    assert "wsgi.input" not in change.environ  # only the string values

    (trunk / "file").write_text("four\n")
    brz("commit", "-m", "four", cwd=trunk)
    brz("push", cwd=trunk)
    assert [c.new_revisions(Branch.open) for c in changes[1:]] == [(revid(brz, trunk, "4"),)]


def test_a_failing_listener_does_not_fail_the_push(changes, server, tmp_path, capsys):
    def broken(change: TipChange) -> None:
        raise RuntimeError("listener broke")

    tip_changes._listeners.insert(0, broken)
    brz = Brz(tmp_path / "home")
    with_credentials(brz, server, "alice", "wonderland")
    local = local_branch(brz, tmp_path / "local")
    brz("push", server.url("trunk"), cwd=local)
    assert brz.revno(server.url("trunk")) == 1
    # later listeners still run
    assert [c.new_revisions(Branch.open) for c in changes] == [(revid(brz, local),)]
    assert "listener broke" in capsys.readouterr().err


def test_a_listener_is_registered_once(changes):
    on_tip_change(changes.append)
    on_tip_change(changes.append)
    assert tip_changes._listeners == [changes.append]


def test_branches_of_other_trees_are_not_reported():
    assert tip_changes.local_path("file:///somewhere/else/") is None
