"""Attack: `list_dir` named what its user may not read (low: names only).

A directory is readable when anything below it is (`Rules._readable_below`),
so `/` is readable to every user with any rule, and the VFS `list_dir` of it
(or of any folder above a readable section) named every entry, readable or
not. Found by review; a listing now names only what its reader may read
(`rights.visible`), as the folder pages do.
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

[/secret-merger-project]
alice = rw

[/beta]
bob = rw

[/beta/team/hidden-name]
bob =
"""


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Server]:
    root, authz_file = tmp_path / "root", tmp_path / "authz"
    root.mkdir()
    authz_file.write_text(RULES)
    maker = Brz(tmp_path / "maker")
    local_branch(maker, root / "secret-merger-project", "x\n")
    local_branch(maker, root / "beta", "beta\n")
    (root / "beta" / "team" / "hidden-name").mkdir(parents=True)
    served = Server(root, READ_WRITE, authz_file=authz_file)
    yield served
    served.stop()


def test_bob_cannot_look_inside(tree) -> None:
    """What he may not read lists as what does not exist: nothing (`ListingOfNoDirectory`)."""
    hidden = post_smart(tree, "", smart_request(b"list_dir", b"secret-merger-project"), "bob")
    missing = post_smart(tree, "", smart_request(b"list_dir", b"no-such-project"), "bob")
    assert smart_reply(hidden[1])[:2] == smart_reply(missing[1])[:2] == (b"S", (b"names",))


def test_has_answers_a_hidden_place_as_a_missing_one(tree) -> None:
    """Issue 19 review: `has` of a place under a deny rule was an error, of a place that
    is nowhere `no`: a guessed name was confirmed by the error alone."""
    for place in (b"secret-merger-project", b"beta/team/hidden-name", b"no-such-project"):
        _status, reply = post_smart(tree, "", smart_request(b"has", place), "bob")
        assert smart_reply(reply)[:2] == (b"S", (b"no",)), place
    _status, reply = post_smart(tree, "", smart_request(b"has", b"beta"), "bob")
    assert smart_reply(reply)[:2] == (b"S", (b"yes",))


def test_bob_does_not_learn_the_names_of_what_he_may_not_read(tree) -> None:
    _, reply = post_smart(tree, "", smart_request(b"list_dir", b""), "bob")
    assert smart_reply(reply)[:2] == (b"S", (b"names", b"beta"))
    _status, reply = post_smart(tree, "beta/", smart_request(b"list_dir", b"team"), "bob")
    assert smart_reply(reply)[:2] == (b"S", (b"names",))
    _status, reply = post_smart(tree, "", smart_request(b"list_dir", b""), "alice")
    assert smart_reply(reply)[:2] == (b"S", (b"names", b"secret-merger-project"))
