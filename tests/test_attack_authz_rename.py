"""Attack: a VFS `rename` of a directory would carry every path below it out of its rules.

A directory that bob may write can hold paths with rules of their own (a
branch he may only read, one he may not read at all): renaming the
directory would move them under bob's own rule, where he could read and
write them, and renaming it back would put them in place, changed. Found
by review; now a rename or move of a directory below which the rules name
paths is refused (`rights.check_move`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from smart_harness import Server, local_branch, post_smart, smart_reply
from stack import Brz, smart_request

from trac_breezy.setenv import READ_WRITE

RULES = """\
[/]
* =

[/beta]
bob = rw

[/beta/team/release]
alice = rw
bob = r

[/beta/team/secret]
alice = rw
bob =
"""


def bob(server: Server, verb: bytes, *args: bytes, body: bytes | None = None):
    status, reply = post_smart(server, "beta/", smart_request(verb, *args, body=body), "bob")
    assert status == 200
    return smart_reply(reply)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Server]:
    root, authz_file = tmp_path / "root", tmp_path / "authz"
    root.mkdir()
    authz_file.write_text(RULES)
    maker = Brz(tmp_path / "maker")
    (root / "beta" / "team").mkdir(parents=True)
    local_branch(maker, root / "beta" / "team" / "release", "release\n")
    local_branch(maker, root / "beta" / "team" / "secret", "top secret\n")
    served = Server(root, READ_WRITE, authz_file=authz_file)
    yield served
    served.stop()


def test_the_rules_hold_for_direct_paths(tree) -> None:
    """The baseline: bob can neither read secret nor write release by their own paths."""
    status, *_ = bob(tree, b"get", b"team/secret/file")
    assert status == b"E"
    status, *_ = bob(tree, b"put", b"team/release/file", b"", body=b"bob's\n")
    assert status == b"E"


def test_renaming_a_parent_directory_is_refused(tree) -> None:
    status, args, _ = bob(tree, b"rename", b"team", b"mine")
    assert status == b"E" and args[0] == b"PermissionDenied"
    assert b"access rules name paths below it" in args[-1]
    status, *_ = bob(tree, b"get", b"mine/secret/file")
    assert status == b"E"
    assert (tree.root / "beta" / "team" / "secret" / "file").exists()
    assert not (tree.root / "beta" / "mine").exists()


def test_moving_a_parent_directory_copies_only_what_bob_may_read_and_deletes_nothing_else(
    tree,
) -> None:
    """The chroot has no `move` of its own: Breezy's copies, then deletes, file by file.

    Copying what bob may read to where he may write is no more than a `get`
    and a `put`; deleting the originals needs write on them, so it stops there.
    """
    status, args, _ = bob(tree, b"move", b"team", b"mine")
    assert status == b"E" and args[0] == b"PermissionDenied"
    team = tree.root / "beta" / "team"
    assert (team / "release" / "file").read_text() == "release\n"
    assert (team / "secret" / "file").read_text() == "top secret\n"
    assert not (tree.root / "beta" / "mine" / "secret").exists()


def test_a_directory_without_rules_below_it_can_still_be_renamed(tree) -> None:
    assert bob(tree, b"mkdir", b"scratch", b"")[0] == b"S"
    assert bob(tree, b"rename", b"scratch", b"scratch2")[0] == b"S"
    assert (tree.root / "beta" / "scratch2").is_dir()
