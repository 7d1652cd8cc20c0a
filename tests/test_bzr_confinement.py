"""Trac's Bazaar backend opens nothing outside the directory of a repository.

A pusher can turn a branch into a reference (``.bzr/branch/location``) or
stack it on another branch (``stacked_on_location``) with plain ``mkdir`` and
``put`` requests; an administrator's symlink can put ``.bzr`` anywhere.  An
anonymous page view must then neither connect anywhere (SSRF) nor show files
from outside the repository's ``dir``; a refused branch of a folder of
branches shows as an error in its own row while the others keep working,
and a lone refused branch is an `InvalidRepository` naming the problem.
Every branch here is a real one built by Breezy; references are written the
way a pusher writes them, file by file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_bzr_backend
from breezy.branch import Branch
from breezy.repository import Repository
from test_bzr_backend import names, open_repos, render_page
from test_bzr_storage import commit, make_branch, write
from trac.test import EnvironmentStub
from trac.versioncontrol.api import DbRepositoryProvider, InvalidRepository, NoSuchNode

from trac_breezy.trac_app.bzr import storage
from trac_breezy.trac_app.bzr.repository import BzrRepository

pytestmark = pytest.mark.usefixtures("fresh_bzr_caches")
trac_env = test_bzr_backend.trac_env  # the fixture: an EnvironmentStub with our plugins

SECRET = b"outside the repository directory\n"


# -- Helpers -------------------------------------------------------------------


def make_reference(path: Path, url: str) -> None:
    """A branch reference to `url`, written file by file as a pusher can."""
    (path / ".bzr" / "branch").mkdir(parents=True)
    (path / ".bzr" / "branch-format").write_bytes(b"Bazaar-NG meta directory, format 1\n")
    (path / ".bzr" / "branch" / "format").write_bytes(b"Bazaar-NG Branch Reference Format 1\n")
    (path / ".bzr" / "branch" / "location").write_text(url)


def branch_with(path: Path, name: str, data: bytes) -> Branch:
    tree = make_branch(path)
    write(tree, name, data)
    commit(tree, f"add {name}", 0)
    return tree.branch


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A branch outside the repository directories, with a file nobody may see."""
    branch_with(tmp_path / "outside", "secret.txt", SECRET)
    return tmp_path / "outside"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A folder of branches (no shared repository) with a good branch `trunk`."""
    (tmp_path / "root").mkdir()
    branch_with(tmp_path / "root" / "trunk", "main.c", b"int main;\n")
    return tmp_path / "root"


@pytest.fixture
def listener() -> Iterator[tuple[int, list[object]]]:
    """A loopback port that records (and drops) every connection made to it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.05)
    connections: list[object] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                conn, peer = sock.accept()
                connections.append(peer)
                conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], connections
    finally:
        done.set()
        thread.join(5)
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            connections.append(sock.accept()[1])  # one still waiting in the backlog
        sock.close()


def refused_row(repos: BzrRepository, relpath: str) -> str:
    """The error a refused branch shows: an empty directory with `bzr:error`."""
    node = repos.get_node(relpath)
    assert node.isdir and list(node.get_entries()) == []
    assert node.get_properties()["bzr:branch"] == relpath
    return node.get_properties()["bzr:error"]


def assert_good_branch_works(repos: BzrRepository) -> None:
    assert repos.get_node("trunk/main.c").get_content().read() == b"int main;\n"
    assert [c.message for c in map(repos.get_changeset, repos.iter_revs())] == ["add main.c"]


def assert_refused_alone_and_among_others(root: Path, relpath: str, reason: str) -> None:
    """`relpath` is an invalid repository; in the folder, an error row beside `trunk`."""
    with pytest.raises(InvalidRepository, match=reason):
        open_repos(root / relpath)
    repos = open_repos(root)
    try:
        assert re.search(reason, refused_row(repos, relpath))
        with pytest.raises(NoSuchNode):
            repos.get_node(f"{relpath}/secret.txt")
        assert_good_branch_works(repos)
    finally:
        repos.close()


# -- References ----------------------------------------------------------------


def test_a_reference_to_a_network_address_connects_nowhere(
    root: Path, listener: tuple[int, list[object]], caplog: pytest.LogCaptureFixture
) -> None:
    port, connections = listener
    url = f"http://127.0.0.1:{port}/bzr/elsewhere"
    make_reference(root / "evil", url)
    with pytest.raises(InvalidRepository, match=f'is a reference to "{re.escape(url)}"'):
        open_repos(root / "evil")
    repos = open_repos(root)
    try:
        assert names(repos.get_node("/")) == ["evil", "trunk"]
        error = refused_row(repos, "evil")
        assert str(root / "evil") in error and url in error and "not followed" in error
        assert_good_branch_works(repos)
        assert list(repos.get_quickjump_entries(None))  # the other branches' entries
    finally:
        repos.close()
    assert connections == []
    assert any(url in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_a_branch_turned_into_a_reference_is_refused_at_once(
    root: Path, listener: tuple[int, list[object]]
) -> None:
    branch_with(root / "victim", "v.txt", b"v\n")
    control = root / "victim" / ".bzr" / "branch"
    os.utime(control / "last-revision", (0, 0))  # settled: its tip is cached
    repos = open_repos(root)
    assert repos.get_node("victim/v.txt").get_content().read() == b"v\n"
    repos.close()
    url = f"http://127.0.0.1:{listener[0]}/x"
    (control / "format").write_bytes(b"Bazaar-NG Branch Reference Format 1\n")
    (control / "location").write_text(url)  # the tip file is left as it was
    repos = open_repos(root)
    try:
        assert url in refused_row(repos, "victim")
        assert_good_branch_works(repos)
    finally:
        repos.close()
    assert listener[1] == []


def test_a_reference_to_a_file_url_outside_is_refused(root: Path, outside: Path) -> None:
    make_reference(root / "ref", outside.as_uri())
    reason = f'is a reference to "{re.escape(outside.as_uri())}", which is not inside'
    assert_refused_alone_and_among_others(root, "ref", reason)


def test_a_reference_inside_the_directory_is_followed(root: Path) -> None:
    make_reference(root / "alias", (root / "trunk").as_uri())
    repos = open_repos(root)
    try:
        assert repos.get_node("alias/main.c").get_content().read() == b"int main;\n"
        assert "bzr:error" not in repos.get_node("alias").get_properties()
    finally:
        repos.close()


# -- Stacking ------------------------------------------------------------------


def test_a_branch_stacked_on_one_outside_is_refused(root: Path, outside: Path) -> None:
    base = Branch.open(str(outside))
    stacked = base.controldir.sprout(str(root / "stacked"), stacked=True).open_workingtree()
    write(stacked, "mine.txt", "mine\n")
    commit(stacked, "stacked change", 1)
    assert stacked.branch.get_stacked_on_url().rstrip("/") == base.base.rstrip("/")
    assert_refused_alone_and_among_others(root, "stacked", r"is stacked on .*not followed")


def test_a_branch_stacked_on_one_inside_still_works(root: Path) -> None:
    trunk = Branch.open(str(root / "trunk"))
    feature = trunk.controldir.sprout(str(root / "feature"), stacked=True).open_workingtree()
    write(feature, "feature.c", "feature\n")
    commit(feature, "feature change", 1)
    assert feature.branch.get_stacked_on_url()
    own = Repository.open(str(root / "feature"))  # without its fallback
    assert not own.has_revision(trunk.last_revision())  # only in trunk's repository
    repos = open_repos(root)
    try:
        assert names(repos.get_node("feature")) == ["feature.c", "main.c"]
        assert repos.get_node("feature/main.c").get_content().read() == b"int main;\n"
        assert repos.get_node("feature/main.c").get_annotations()
        history = [path for path, _rev, _chg in repos.get_node("feature/main.c").get_history()]
        assert history == ["feature/main.c"]
        assert "bzr:error" not in repos.get_node("feature").get_properties()
    finally:
        repos.close()


# -- Symlinks and repositories -------------------------------------------------


def test_symlinks_lead_nowhere_outside(root: Path, outside: Path) -> None:
    os.symlink(outside, root / "linked")  # a symlinked directory: not even listed
    (root / "sneaky").mkdir()
    os.symlink(outside / ".bzr", root / "sneaky" / ".bzr")  # listed, refused
    assert storage.find_branches(str(root)) == ["sneaky", "trunk"]
    repos = open_repos(root)
    try:
        assert names(repos.get_node("/")) == ["sneaky", "trunk"]
        assert "outside" in refused_row(repos, "sneaky")
        with pytest.raises(NoSuchNode):
            repos.get_node("sneaky/secret.txt")
    finally:
        repos.close()
    with pytest.raises(InvalidRepository, match="is really at"):
        open_repos(root / "sneaky")


def test_a_repository_outside_is_refused(root: Path, outside: Path) -> None:
    Branch.open(str(outside)).controldir.sprout(str(root / "borrowed"))
    repository = root / "borrowed" / ".bzr" / "repository"
    for child in sorted(repository.rglob("*"), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    repository.rmdir()
    os.symlink(outside / ".bzr" / "repository", repository)
    assert_refused_alone_and_among_others(root, "borrowed", r"its repository is at .*outside")


# -- What Trac shows -----------------------------------------------------------


def test_trac_pages_show_the_refused_branch_and_the_others(
    trac_env: EnvironmentStub, root: Path, listener: tuple[int, list[object]]
) -> None:
    from trac.versioncontrol.web_ui.browser import BrowserModule

    port, connections = listener
    make_reference(root / "evil", f"http://127.0.0.1:{port}/x")
    DbRepositoryProvider(trac_env).add_repository("multi", str(root), "bzr")
    pages = {
        path: re.sub(r"<[^>]+>", "", render_page(trac_env, BrowserModule(trac_env), path))
        for path in ("/browser/multi", "/browser/multi/evil", "/browser/multi/trunk/main.c")
    }
    assert "evil" in pages["/browser/multi"] and "trunk" in pages["/browser/multi"]
    assert "bzr:error" in pages["/browser/multi/evil"]
    assert "is a reference to" in pages["/browser/multi/evil"]
    assert "int main;" in pages["/browser/multi/trunk/main.c"]
    assert connections == []


# -- The access rules at a reference's target (issue 19, finding 2) -------------

RULES_WITH_A_SECRET = """\
[/]
* = r

[/root/secret]
* =
"""


def test_a_reference_or_stacking_is_followed_only_where_the_rules_let_its_readers(
    root: Path,
) -> None:
    from trac_breezy.authz import parse
    from trac_breezy.trac_app.bzr.confinement import rule_check

    tree = root.parent
    branch_with(root / "secret", "secret.txt", SECRET)
    make_reference(root / "ref", (root / "secret").as_uri())
    make_reference(root / "alias", (root / "trunk").as_uri())
    secret = Branch.open(str(root / "secret"))
    stacked = secret.controldir.sprout(str(root / "stacked"), stacked=True).open_workingtree()
    commit(stacked, "stacked change", 1)
    rules = parse(RULES_WITH_A_SECRET)
    follow = rule_check(str(tree), lambda: rules)
    repos = BzrRepository(
        str(root), {"name": "p", "id": 1}, logging.getLogger("t"), str(tree), follow
    )
    try:
        for relpath in ("ref", "stacked"):
            assert "fewer people read" in refused_row(repos, relpath)
            with pytest.raises(NoSuchNode):
                repos.get_node(f"{relpath}/secret.txt")
        assert repos.get_node("alias/main.c").get_content().read() == b"int main;\n"
        assert repos.get_node("trunk/main.c").get_content().read() == b"int main;\n"
    finally:
        repos.close()
    # The same tree without rules: followed, as before.
    repos = BzrRepository(str(root), {"name": "p", "id": 1}, logging.getLogger("t"), str(tree))
    try:
        assert repos.get_node("ref/secret.txt").get_content().read() == SECRET
    finally:
        repos.close()


def test_may_lead_compares_every_reader_of_the_source_with_the_target() -> None:
    from trac_breezy.authz import parse

    rules = parse(
        "[groups]\nteam = alice, bob\n[/]\n* =\n[/a]\n@team = r\n[/b]\nalice = r\n"
        "[/c]\n* = r\n[/c/hidden]\n* =\n[/d]\n$authenticated = r\n"
    )
    assert not rules.may_lead("/a/x", "/b/y")  # bob reads /a, not /b
    assert rules.may_lead("/b/x", "/a/y")
    assert rules.may_lead("/a/x", "/c/y")
    assert not rules.may_lead("/c/x", "/c")  # /c/x/hidden is readable, /c/hidden is not
    assert not rules.may_lead("/c/x", "/d/y")  # anonymous reads /c, not /d
    assert rules.may_lead("/d/x", "/c/y")
