"""Access rules (AUTHZ_FILE) in the smart server, with the real brz client.

alice writes /alpha (a shared repository with a trunk) and reads /beta; bob
writes /beta only; anonymous reads /public only. Every way a request can
name a path is tried: a branch's own URL, its shared repository above it,
a checkout's commit, a branch from one place of the server to another, and
raw VFS requests whose paths climb out of their URL with `..`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from breezy.transport import local
from smart_harness import USERS, Server, local_branch, post_smart, smart_reply, with_credentials
from stack import Brz, smart_request

from trac_breezy.setenv import READ_WRITE
from trac_breezy.smart_server import rights

RULES = """\
[groups]
team = alice, bob

[/]
* =

[/alpha]
alice = rw

[/beta]
alice = r
bob = rw

[/public]
* = r
@team = rw
"""


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """The served tree (alpha: repository + trunk, beta, public) and its rule file."""
    root, authz_file = tmp_path / "root", tmp_path / "authz"
    root.mkdir()
    authz_file.write_text(RULES)
    maker = Brz(tmp_path / "maker")
    maker("init-shared-repo", str(root / "alpha"))
    local_branch(maker, root / "alpha" / "trunk", "alpha\n")
    local_branch(maker, root / "beta", "beta\n")
    local_branch(maker, root / "public", "public\n")
    served = Server(root, READ_WRITE, authz_file=authz_file)
    yield served, authz_file
    served.stop()


def client(tmp_path: Path, server: Server, user: str | None) -> Brz:
    brz = Brz(tmp_path / f"home-{user or 'anonymous'}")
    if user:
        with_credentials(brz, server, user, USERS[user])
    return brz


def fails(brz: Brz, *args: str, cwd: Path | None = None) -> str:
    """Run brz, which must fail; its error output."""
    result = brz(*args, cwd=cwd, check=False)
    assert result.returncode != 0, f"brz {' '.join(args)} succeeded: {result.stdout}"
    return result.stderr


def committed(brz: Brz, work: Path, text: str) -> None:
    (work / "file").write_text(text)
    brz("commit", "-m", text.strip(), cwd=work)


def test_each_user_branches_what_they_may_read(tmp_path: Path, tree) -> None:
    server, _ = tree
    anonymous, alice, bob = (client(tmp_path, server, u) for u in (None, "alice", "bob"))
    anonymous("branch", server.url("public"), str(tmp_path / "a-public"))
    # brz is asked for a password (and, with none to give, stops).
    error = fails(anonymous, "branch", server.url("alpha/trunk"), str(tmp_path / "a"))
    assert "Realm: 'trac-breezy' username:" in error and "401" in error
    alice("branch", server.url("alpha/trunk"), str(tmp_path / "alice-alpha"))
    alice("branch", server.url("beta"), str(tmp_path / "alice-beta"))
    bob("branch", server.url("beta"), str(tmp_path / "bob-beta"))
    assert "Not a branch" in fails(
        bob, "branch", server.url("alpha/trunk"), str(tmp_path / "bob-alpha")
    )
    assert (tmp_path / "alice-alpha" / "file").read_text() == "alpha\n"


def test_pushes_and_checkout_commits_land_only_where_their_user_may_write(
    tmp_path: Path, tree
) -> None:
    server, _ = tree
    alice, bob = client(tmp_path, server, "alice"), client(tmp_path, server, "bob")
    work = tmp_path / "alice-beta"
    alice("branch", server.url("beta"), str(work))
    committed(alice, work, "alice was here\n")
    error = fails(alice, "push", server.url("beta"), cwd=work)
    assert "may read but not write here" in error
    alice("push", server.url("alpha/feature"), cwd=work)  # a new branch in her repository
    assert alice.revno(server.url("alpha/feature")) == 2
    checkout = tmp_path / "bob-checkout"
    bob("checkout", server.url("beta"), str(checkout))
    committed(bob, checkout, "bob's change\n")
    assert bob.revno(server.url("beta")) == 2
    checkout = tmp_path / "alice-checkout"
    alice("checkout", server.url("beta"), str(checkout))
    (checkout / "file").write_text("not hers\n")
    fails(alice, "commit", "-m", "not hers", cwd=checkout)
    assert bob.revno(server.url("beta")) == 2
    assert not (server.root / "beta" / ".bzr" / "branch" / "lock" / "held").exists()


def test_branches_from_one_place_of_the_server_to_another(tmp_path: Path, tree) -> None:
    server, _ = tree
    alice, bob = client(tmp_path, server, "alice"), client(tmp_path, server, "bob")
    alice("branch", server.url("beta"), server.url("alpha/from-beta"))
    assert alice.revno(server.url("alpha/from-beta")) == 1
    fails(bob, "branch", server.url("beta"), server.url("alpha/from-bob"))
    fails(alice, "branch", server.url("alpha/trunk"), server.url("beta/from-alpha"))
    fails(bob, "branch", server.url("alpha/trunk"), server.url("public/from-alpha"))
    assert not (server.root / "alpha" / "from-bob").exists()
    assert not (server.root / "beta" / "from-alpha").exists()
    assert not (server.root / "public" / "from-alpha").exists()


LAST_REVISION = b"../alpha/trunk/.bzr/branch/last-revision"


def test_vfs_paths_that_climb_out_of_their_url_are_checked_where_they_land(tree) -> None:
    server, _ = tree
    status, reply = post_smart(server, "beta/", smart_request(b"get", LAST_REVISION), "alice")
    assert status == 200 and smart_reply(reply)[0] == b"S"
    status, reply = post_smart(server, "beta/", smart_request(b"get", LAST_REVISION), "bob")
    assert status == 200 and smart_reply(reply)[:2] == (
        b"E",
        (b"NoSuchFile", b"/alpha/trunk/.bzr/branch/last-revision"),
    )
    planted = b"../alpha/trunk/planted"
    request = smart_request(b"put", planted, b"")
    status, reply = post_smart(server, "beta/", request, "bob")
    assert status == 200 and smart_reply(reply)[0] == b"E"
    assert not (server.root / "alpha" / "trunk" / "planted").exists()
    status, reply = post_smart(
        server, "public/", smart_request(b"mkdir", b"../alpha/made", b""), "bob"
    )
    assert status == 200 and smart_reply(reply)[0] == b"E"
    assert not (server.root / "alpha" / "made").exists()
    status, reply = post_smart(server, "public/", smart_request(b"get", b"../beta/file"), None)
    assert status == 200 and smart_reply(reply)[:2] == (b"E", (b"NoSuchFile", b"/beta/file"))


def test_a_symlink_is_judged_by_where_it_leads(tree) -> None:
    server, _ = tree
    os.symlink(server.root / "alpha", server.root / "public" / "door")
    request = smart_request(b"get", b"door/trunk/.bzr/branch/last-revision")
    status, reply = post_smart(server, "public/", request, "bob")
    assert status == 200 and smart_reply(reply)[0] == b"E"


def test_the_rules_are_reread_when_the_file_changes(tmp_path: Path, tree) -> None:
    server, authz_file = tree
    bob = client(tmp_path, server, "bob")
    target = tmp_path / "bob-alpha"
    fails(bob, "branch", server.url("alpha/trunk"), str(target))
    before = authz_file.stat().st_mtime_ns
    authz_file.write_text(RULES.replace("alice = rw\n", "alice = rw\nbob = r\n", 1))
    os.utime(authz_file, ns=(before + 10**9, before + 10**9))
    bob("branch", server.url("alpha/trunk"), str(target))
    authz_file.write_text("[/]\n* = banana\n")  # broken: nothing is served
    os.utime(authz_file, ns=(before + 2 * 10**9, before + 2 * 10**9))
    fails(bob, "branch", server.url("beta"), str(tmp_path / "bob-beta"))


def test_every_operation_of_breezys_local_transport_is_classified() -> None:
    """A new file operation in Breezy must be declared a read or a write."""
    public = {
        name
        for name, member in inspect.getmembers(local.LocalTransport, inspect.isfunction)
        if not name.startswith("_") and name in vars(local.LocalTransport)
    }
    declared = set(rights.READS + rights.WRITES_FIRST + rights.WRITES_BOTH + rights.WRITES_SECOND)
    assert public == declared
