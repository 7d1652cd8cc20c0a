"""Unit tests for the Trac version-control backend for Bazaar branches.

Every test reads real branches that Breezy builds in a temporary directory.
The main project branch, built once per module, has this history (revnos as
`brz log -n0` shows them; the side branch was forked at 3 and merged in 5):

    1    add README.txt, src/a.py, data.bin (binary), empty dir docs
    2    edit src/a.py; add docs/ünïcødé-名前.txt; non-ASCII message
    3    rename src/a.py -> src/b.py; delete README.txt
    3.1.1  (side) prepend a line to src/b.py
    3.1.2  (side) add side.txt
    4    change data.bin (still binary)
    5    merge the side branch ("fixes #1")
    6    edit src/b.py
    7    edit src/b.py, tagged v7
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import breezy.bzr.bzrdir  # sets Breezy's default control-dir format (and binds `breezy`)
import pytest
from breezy import controldir
from breezy.branch import Branch
from test_bzr_storage import (
    FORMAT,
    HOUR,
    T0,
    commit,
    make_branch,
    make_shared_repository,
    write,
)
from trac.core import TracError
from trac.test import EnvironmentStub, MockRequest
from trac.util.datefmt import utc
from trac.versioncontrol.api import (
    Changeset,
    DbRepositoryProvider,
    InvalidRepository,
    Node,
    NoSuchChangeset,
    NoSuchNode,
    RepositoryManager,
)

from trac_breezy.trac_app.bzr import storage
from trac_breezy.trac_app.bzr.connector import BzrCachedRepository, notify_new_revisions
from trac_breezy.trac_app.bzr.naming import quote_revid
from trac_breezy.trac_app.bzr.repository import BzrRepository

UNICODE_NAME = "docs/ünïcødé-名前.txt"
UNICODE_MESSAGE = "Ünïcødé commit — 日本語のメッセージ"
BINARY_V1 = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
BINARY_V2 = BINARY_V1 + b"\x00\xff\x00more"
A_PY = "line one\nline two\nline three\n"


# -- Fixtures and helpers ----------------------------------------------------


pytestmark = pytest.mark.usefixtures("fresh_bzr_caches")


def open_repos(path: Path | str, name: str = "proj") -> BzrRepository:
    import logging

    return BzrRepository(str(path), {"name": name, "id": 1}, logging.getLogger("test"))


@dataclass
class Project:
    path: Path
    revids: dict[str, bytes]


@pytest.fixture(scope="module")
def project(bzr_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    base = tmp_path_factory.mktemp("project")
    trunk = make_branch(base / "trunk")
    revids = {}
    write(trunk, "README.txt", "hello\n")
    write(trunk, "src/a.py", A_PY)
    write(trunk, "data.bin", BINARY_V1)
    Path(trunk.basedir, "docs").mkdir()
    trunk.add(["docs"])
    revids["1"] = commit(trunk, "Initial import", 0)
    write(trunk, "src/a.py", A_PY + "line four\n")
    write(trunk, UNICODE_NAME, "ünïcødé content\n")
    revids["2"] = commit(trunk, UNICODE_MESSAGE, 1)
    trunk.rename_one("src/a.py", "src/b.py")
    trunk.remove(["README.txt"], keep_files=False)
    revids["3"] = commit(trunk, "Rename a.py to b.py, drop README", 2)

    side = trunk.branch.controldir.sprout(str(base / "side")).open_workingtree()
    write(side, "src/b.py", "side first line\n" + A_PY + "line four\n")
    revids["3.1.1"] = commit(side, "Side: prepend a line", 3)
    write(side, "side.txt", "from the side branch\n")
    revids["3.1.2"] = commit(side, "Side: add side.txt", 4)

    write(trunk, "data.bin", BINARY_V2)
    revids["4"] = commit(trunk, "Update the binary", 5)
    trunk.merge_from_branch(side.branch)
    revids["5"] = commit(trunk, "Merge side branch, fixes #1", 6)
    for n in (6, 7):
        current = Path(trunk.basedir, "src/b.py").read_text()
        write(trunk, "src/b.py", current + f"edit {n}\n")
        revids[str(n)] = commit(trunk, f"Edit b.py again ({n}), refs #2", n + 1)
    trunk.branch.tags.set_tag("v7", revids["7"])
    return Project(base / "trunk", revids)


@pytest.fixture
def repos(project: Project) -> Iterator[BzrRepository]:
    repos = open_repos(project.path)
    yield repos
    repos.close()


def names(node: Node) -> list[str]:
    return sorted(child.name for child in node.get_entries())


def snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory below `path` with its size and mtime."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            result[os.path.relpath(full, path)] = (st.st_size, st.st_mtime_ns)
    return result


# -- Browsing ----------------------------------------------------------------


def test_browse_root_and_dir_at_tip(repos: BzrRepository) -> None:
    root = repos.get_node("/")
    assert root.isdir and root.rev == "7" and root.path == "/"
    assert names(root) == ["data.bin", "docs", "side.txt", "src"]
    entries = {child.name: child for child in root.get_entries()}
    assert entries["data.bin"].isfile and entries["src"].isdir
    assert entries["data.bin"].created_rev == "4"
    assert entries["side.txt"].created_rev == "3.1.2"
    assert entries["src"].created_rev == "7"  # newest change below src/
    assert entries["docs"].created_rev == "2"
    assert entries["data.bin"].get_content_length() == len(BINARY_V2)
    assert root.get_content() is None and root.get_content_length() is None
    assert names(repos.get_node("src")) == ["b.py"]


def test_browse_old_revision(repos: BzrRepository) -> None:
    root = repos.get_node("/", "1")
    assert root.rev == "1"
    assert names(root) == ["README.txt", "data.bin", "docs", "src"]
    old = repos.get_node("src/a.py", "2")
    assert old.get_content().read() == (A_PY + "line four\n").encode()
    assert old.created_rev == "2" and old.rev == "2"
    assert repos.get_node("src/a.py", "1").get_content().read() == A_PY.encode()
    with pytest.raises(NoSuchNode):
        repos.get_node("src/b.py", "2")
    with pytest.raises(NoSuchNode):
        repos.get_node("src/a.py", "3")
    assert repos.has_node("README.txt", "2") and not repos.has_node("README.txt", "3")
    assert not repos.has_node("nope.txt")


def test_file_node_metadata(repos: BzrRepository) -> None:
    node = repos.get_node("src/b.py", "5")
    expected = "side first line\n" + A_PY + "line four\n"
    assert isinstance(node.get_content(), io.BufferedIOBase)  # a stream, read(n) by Trac
    assert node.get_content().read() == expected.encode()
    assert node.get_content_length() == len(expected)
    assert node.get_content_type() is None
    assert node.created_rev == "3.1.1" and node.created_path == "src/b.py"
    modified = node.last_modified
    assert modified.tzinfo is not None and modified.utcoffset() == timedelta(0)
    assert modified.timestamp() == T0 + 3 * HOUR
    assert node.get_properties() == {}


def test_binary_and_unicode_files(repos: BzrRepository) -> None:
    assert repos.get_node("data.bin", "1").get_content().read() == BINARY_V1
    assert repos.get_node("data.bin").get_content().read() == BINARY_V2
    node = repos.get_node(UNICODE_NAME, "2")
    assert node.name == "ünïcødé-名前.txt"
    assert node.get_content().read() == "ünïcødé content\n".encode()
    assert names(repos.get_node("docs", "2")) == ["ünïcødé-名前.txt"]
    assert names(repos.get_node("docs", "1")) == []


def test_annotate(repos: BzrRepository) -> None:
    node = repos.get_node("src/b.py")
    lines = node.get_content().read().decode().splitlines()
    annotations = node.get_annotations()
    assert len(annotations) == len(lines) == 7
    assert annotations == ["3.1.1", "1", "1", "1", "2", "6", "7"]


# -- Revisions ---------------------------------------------------------------


def test_revision_strings_and_dotted_revnos(repos: BzrRepository, project: Project) -> None:
    assert list(repos.iter_revs()) == ["1", "2", "3", "4", "3.1.1", "3.1.2", "5", "6", "7"]
    assert repos.youngest_rev == "7" and repos.oldest_rev == "1"
    assert repos.normalize_rev(None) == repos.normalize_rev("head") == "7"
    assert repos.normalize_rev("3.1.2") == "3.1.2"
    assert repos.normalize_rev(5) == "5" and repos.normalize_rev("r5") == "5"
    revid = project.revids["3.1.1"].decode()
    assert repos.normalize_rev(f"revid:{revid}") == "3.1.1"
    assert repos.get_changeset_uid("3.1.1") == revid
    assert repos.display_rev("3.1.2") == repos.short_rev("3.1.2") == "3.1.2"
    for bad in ("8", "0", "3.1.3", "nonsense", "revid:nope"):
        with pytest.raises(NoSuchChangeset):
            repos.normalize_rev(bad)


def test_merged_revisions(repos: BzrRepository) -> None:
    merged = repos.get_changeset("3.1.1")
    assert merged.message == "Side: prepend a line"
    assert merged.get_properties()["Merged in"] == ["5"]
    merge = repos.get_changeset("5")
    props = merge.get_properties()
    assert props["Parents"] == ["4", "3.1.2"]
    assert props["Merged"] == ["3.1.2", "3.1.1"]
    assert props["Branch nick"] == "trunk"
    assert repos.parent_revs("5") == ["4", "3.1.2"]
    assert repos.child_revs("3.1.2") == ["5"]


def test_previous_next_and_order(repos: BzrRepository) -> None:
    assert repos.previous_rev("5") == "4"  # first parent
    assert repos.previous_rev("3.1.1") == "3"
    assert repos.previous_rev("1") is None
    assert repos.next_rev("4") == "5"
    assert repos.next_rev("3") == "4"  # the first child, on the mainline
    assert repos.next_rev("3.1.1") == "3.1.2"
    assert repos.next_rev("3.1.2") == "5"
    assert repos.next_rev("7") is None
    assert repos.rev_older_than("3.1.1", "5") and not repos.rev_older_than("5", "3.1.1")
    assert repos.rev_older_than("1", "2") and not repos.rev_older_than("2", "2")
    # with a path: only revisions that changed it
    assert repos.previous_rev("7", "src/b.py") == "6"
    assert repos.previous_rev("5", "src/b.py") == "3.1.1"
    assert repos.previous_rev("4", "data.bin") == "1"
    assert repos.next_rev("1", "data.bin") == "4"
    assert repos.next_rev("4", "data.bin") is None


def test_changeset_metadata(repos: BzrRepository) -> None:
    cset = repos.get_changeset("2")
    assert cset.rev == "2"
    assert cset.message == UNICODE_MESSAGE
    assert cset.author == "Test Committer <committer@example.com>"
    assert cset.date == datetime.fromtimestamp(T0 + HOUR, utc)
    assert cset.date.tzinfo is not None
    assert repos.get_changeset("7").get_tags() == ["v7"]
    with pytest.raises(NoSuchChangeset):
        repos.get_changeset("42")


def test_changeset_changes(repos: BzrRepository) -> None:
    def changes(rev: str) -> list[tuple]:
        return list(repos.get_changeset(rev).get_changes())

    assert changes("1") == [
        ("README.txt", Node.FILE, Changeset.ADD, None, None),
        ("data.bin", Node.FILE, Changeset.ADD, None, None),
        ("docs", Node.DIRECTORY, Changeset.ADD, None, None),
        ("src", Node.DIRECTORY, Changeset.ADD, None, None),
        ("src/a.py", Node.FILE, Changeset.ADD, None, None),
    ]
    assert changes("2") == [
        (UNICODE_NAME, Node.FILE, Changeset.ADD, None, None),
        ("src/a.py", Node.FILE, Changeset.EDIT, "src/a.py", "1"),
    ]
    assert changes("3") == [
        ("README.txt", Node.FILE, Changeset.DELETE, "README.txt", "2"),
        ("src/b.py", Node.FILE, Changeset.MOVE, "src/a.py", "2"),
    ]
    assert changes("4") == [("data.bin", Node.FILE, Changeset.EDIT, "data.bin", "3")]
    assert changes("3.1.2") == [("side.txt", Node.FILE, Changeset.ADD, None, None)]
    # a merge shows what it brought in, against its first parent
    assert changes("5") == [
        ("side.txt", Node.FILE, Changeset.ADD, None, None),
        ("src/b.py", Node.FILE, Changeset.EDIT, "src/b.py", "4"),
    ]


def test_binary_change_nodes(repos: BzrRepository) -> None:
    ((path, _kind, _change, base_path, base_rev),) = repos.get_changeset("4").get_changes()
    old = repos.get_node(base_path, base_rev).get_content().read()
    new = repos.get_node(path, "4").get_content().read()
    assert b"\x00" in old and b"\x00" in new and old != new


def test_get_changes_between_revisions(repos: BzrRepository) -> None:
    changes = {
        (old and old.path, new and new.path, kind, change)
        for old, new, kind, change in repos.get_changes("/", "1", "/", "4")
    }
    assert changes == {
        ("README.txt", None, Node.FILE, Changeset.DELETE),
        ("src/a.py", "src/b.py", Node.FILE, Changeset.MOVE),
        ("data.bin", "data.bin", Node.FILE, Changeset.EDIT),
        (None, UNICODE_NAME, Node.FILE, Changeset.ADD),
    }
    # restricted to a directory, and between two files
    assert [
        (old.path, new.path, change)
        for old, new, _kind, change in repos.get_changes("src", "3", "src", "6")
    ] == [("src/b.py", "src/b.py", Changeset.EDIT)]
    ((old, new, kind, change),) = repos.get_changes("src/a.py", "1", "src/b.py", "7")
    assert (old.rev, new.rev, kind, change) == ("1", "7", Node.FILE, Changeset.EDIT)
    assert list(repos.get_changes("data.bin", "4", "data.bin", "7")) == []
    # two different directories are compared path by path, recursively
    assert [
        (old and old.path, new and new.path, change)
        for old, new, _kind, change in repos.get_changes("/", "1", "docs", "2")
    ] == [
        ("README.txt", None, Changeset.DELETE),
        ("data.bin", None, Changeset.DELETE),
        ("docs", None, Changeset.DELETE),
        ("src", None, Changeset.DELETE),
        ("src/a.py", None, Changeset.DELETE),
        (None, UNICODE_NAME, Changeset.ADD),
    ]
    assert [
        (old.path, new.path, change)
        for old, new, _kind, change in repos.get_changes("src", "1", "src", "2")
    ] == [("src/a.py", "src/a.py", Changeset.EDIT)]


# -- History -----------------------------------------------------------------


def test_file_history_follows_renames_and_merges(repos: BzrRepository) -> None:
    history = list(repos.get_node("src/b.py").get_history())
    assert history == [
        ("src/b.py", "7", Changeset.EDIT),
        ("src/b.py", "6", Changeset.EDIT),
        ("src/b.py", "3.1.1", Changeset.EDIT),
        ("src/b.py", "3", Changeset.MOVE),
        ("src/a.py", "2", Changeset.EDIT),
        ("src/a.py", "1", Changeset.ADD),
    ]
    assert repos.get_node("src/b.py", "5").get_previous() == ("src/b.py", "3", Changeset.MOVE)


def test_path_history_paging(repos: BzrRepository) -> None:
    first = list(repos.get_path_history("src/b.py", None, 2))
    assert first == [("src/b.py", "7", Changeset.EDIT), ("src/b.py", "6", Changeset.EDIT)]
    # the next page restarts at the last revision shown, like Trac's log
    page = list(repos.get_path_history("src/b.py", "6", 3))
    assert [rev for _path, rev, _chg in page] == ["6", "3.1.1", "3"]
    assert list(repos.get_node("src/b.py").get_history(1)) == first[:1]
    # a path that is gone: its deletion first, then its life before
    assert list(repos.get_path_history("README.txt", "7")) == [
        ("README.txt", "3", Changeset.DELETE),
        ("README.txt", "1", Changeset.ADD),
    ]
    assert list(repos.get_path_history("src/a.py", "7", 2)) == [
        ("src/a.py", "3", Changeset.DELETE),
        ("src/a.py", "2", Changeset.EDIT),
    ]


def test_directory_history(repos: BzrRepository) -> None:
    revs = [rev for _path, rev, _chg in repos.get_node("src").get_history()]
    assert revs == ["7", "6", "5", "3.1.1", "3", "2", "1"]
    assert list(repos.get_node("docs").get_history()) == [
        ("docs", "2", Changeset.EDIT),
        ("docs", "1", Changeset.ADD),
    ]
    root = list(repos.get_node("/").get_history(3))
    assert root == [
        ("/", "7", Changeset.EDIT),
        ("/", "6", Changeset.EDIT),
        ("/", "5", Changeset.EDIT),
    ]
    assert list(repos.get_node("/", "1").get_history()) == [("/", "1", Changeset.ADD)]
    # from a merged revision: its own ancestry, not the mainline after it
    at_side = [rev for _path, rev, _chg in repos.get_node("/", "3.1.2").get_history()]
    assert at_side == ["3.1.2", "3.1.1", "3", "2", "1"]
    assert [rev for _p, rev, _c in repos.get_node("src", "3.1.2").get_history()] == [
        "3.1.1",
        "3",
        "2",
        "1",
    ]


def test_directory_rename(tmp_path: Path) -> None:
    tree = make_branch(tmp_path / "b")
    write(tree, "old/x.txt", "x\n")
    commit(tree, "add old/x.txt", 0)
    tree.rename_one("old", "new")
    commit(tree, "rename old to new", 1)
    write(tree, "new/x.txt", "x2\n")
    commit(tree, "edit new/x.txt", 2)
    repos = open_repos(tmp_path / "b")
    try:
        assert list(repos.get_changeset("2").get_changes()) == [
            ("new", Node.DIRECTORY, Changeset.MOVE, "old", "1")
        ]
        assert list(repos.get_node("new").get_history()) == [
            ("new", "3", Changeset.EDIT),
            ("new", "2", Changeset.MOVE),
            ("old", "1", Changeset.ADD),
        ]
        assert list(repos.get_node("new/x.txt").get_history()) == [
            ("new/x.txt", "3", Changeset.EDIT),
            ("old/x.txt", "1", Changeset.ADD),
        ]
        assert list(repos.get_path_history("old", "3")) == [
            ("old", "2", Changeset.DELETE),
            ("old", "1", Changeset.ADD),
        ]
        assert list(repos.get_path_history("never/there", "3")) == []
    finally:
        repos.close()


def test_timeline_changesets(repos: BzrRepository) -> None:
    start = datetime.fromtimestamp(T0 + 2.5 * HOUR, utc)
    stop = datetime.fromtimestamp(T0 + 6.5 * HOUR, utc)
    revs = [cset.rev for cset in repos.get_changesets(start, stop)]
    assert revs == ["5", "3.1.2", "3.1.1", "4"]
    everything = [
        c.rev
        for c in repos.get_changesets(
            datetime(2000, 1, 1, tzinfo=utc), datetime(2100, 1, 1, tzinfo=utc)
        )
    ]
    assert sorted(everything) == sorted(repos.iter_revs())
    assert (
        list(
            repos.get_changesets(datetime(2000, 1, 1, tzinfo=utc), datetime(2001, 1, 1, tzinfo=utc))
        )
        == []
    )


def test_quickjump_lists_tags(repos: BzrRepository) -> None:
    assert list(repos.get_quickjump_entries("7")) == [("tags", "v7", "/", "7")]


def test_new_tags_and_tips_seen_by_the_next_request(tmp_path: Path) -> None:
    make_shared_repository(tmp_path)
    tree = make_branch(tmp_path / "trunk")
    write(tree, "f.txt", "one\n")
    first = commit(tree, "one", 0)
    repos = open_repos(tmp_path)
    assert repos.youngest_rev == quoted(first)
    assert list(repos.get_quickjump_entries(None)) == [
        ("branches", "trunk", "trunk", quoted(first))
    ]
    repos.close()
    tree.branch.tags.set_tag("v1", first)
    second = commit(tree, "two", 1)
    repos = open_repos(tmp_path)  # the next request
    try:
        assert repos.youngest_rev == quoted(second)
        assert list(repos.get_quickjump_entries(None)) == [
            ("branches", "trunk", "trunk", quoted(second)),
            ("tags", "trunk:v1", "trunk", quoted(first)),
        ]
        assert repos.normalize_rev("r1") == repos.normalize_rev("trunk:1") == quoted(first)
    finally:
        repos.close()


# -- Errors, empty branches, safety ------------------------------------------


def test_missing_or_invalid_branch_gives_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(InvalidRepository, match=str(missing)):
        open_repos(missing)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "file.txt").write_text("not a branch")
    with pytest.raises(InvalidRepository, match=str(plain)):
        open_repos(plain)


def test_branch_removed_while_in_use(tmp_path: Path) -> None:
    tree = make_branch(tmp_path / "b")
    write(tree, "f.txt", "x\n")
    commit(tree, "one", 0)
    repos = open_repos(tmp_path / "b")
    assert repos.youngest_rev == "1"
    repos.close()
    shutil.rmtree(tmp_path / "b" / ".bzr")
    with pytest.raises(InvalidRepository, match=str(tmp_path / "b")):
        repos.clear()


def test_unreadable_branch_through_repository_manager(tmp_path: Path) -> None:
    env = EnvironmentStub(enable=["trac.*", "trac_breezy.*"])
    try:
        DbRepositoryProvider(env).add_repository("broken", str(tmp_path / "nope"), "bzr")
        with pytest.raises(TracError, match="nope"):
            RepositoryManager(env).get_repository("broken")
    finally:
        env.reset_db()


def test_storage_errors_become_trac_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = make_branch(tmp_path / "b")
    write(tree, "f.txt", "x\n")
    commit(tree, "one", 0)
    repos = open_repos(tmp_path / "b")

    def broken(*args: object, **kwargs: object) -> None:
        raise storage.BzrStorageError("the disk is on fire")

    try:
        monkeypatch.setattr(storage.BranchHandle, "open_file", broken)
        node = repos.get_node("f.txt")
        with pytest.raises(TracError, match="the disk is on fire") as caught:
            node.get_content()
        assert type(caught.value) is TracError
        monkeypatch.setattr(storage.BranchHandle, "changes", broken)
        with pytest.raises(TracError, match="the disk is on fire"):
            list(repos.get_changeset("1").get_changes())  # raised while iterating
        monkeypatch.setattr(storage.BranchHandle, "revinfo", broken)
        with pytest.raises(TracError, match="the disk is on fire"):
            repos.get_node("/").get_last_modified()
        monkeypatch.setattr(storage.BranchHandle, "entry", broken)
        with pytest.raises(TracError, match="the disk is on fire"):
            repos.get_node("f.txt")
        assert not repos.has_node("f.txt")  # Trac's has_node catches TracError
    finally:
        repos.close()


def test_storage_names_match_trac() -> None:
    from trac.util.text import exception_to_unicode

    assert (storage.ADD, storage.COPY, storage.DELETE, storage.EDIT, storage.MOVE) == (
        Changeset.ADD,
        Changeset.COPY,
        Changeset.DELETE,
        Changeset.EDIT,
        Changeset.MOVE,
    )
    assert (storage.DIRECTORY, storage.FILE) == (Node.DIRECTORY, Node.FILE)
    from breezy.errors import NotBranchError

    for error in (OSError(13, "Permission denied"), NotBranchError("/x")):
        assert storage.describe(error) == exception_to_unicode(error)


def test_empty_branch(tmp_path: Path) -> None:
    make_branch(tmp_path / "empty")
    repos = open_repos(tmp_path / "empty")
    try:
        assert repos.youngest_rev is None and repos.oldest_rev is None
        assert repos.normalize_rev(None) is None
        root = repos.get_node("/")
        assert root.isdir and list(root.get_entries()) == [] and root.rev is None
        assert list(root.get_history()) == []
        assert list(repos.iter_revs()) == []
        assert (
            list(
                repos.get_changesets(
                    datetime(2000, 1, 1, tzinfo=utc), datetime(2100, 1, 1, tzinfo=utc)
                )
            )
            == []
        )
        with pytest.raises(NoSuchChangeset):
            repos.normalize_rev("1")
        with pytest.raises(NoSuchNode):
            repos.get_node("anything")
    finally:
        repos.close()


def test_reads_leave_the_branch_untouched(project: Project) -> None:
    before = snapshot(project.path / ".bzr")
    repos = open_repos(project.path)
    for rev in repos.iter_revs():
        list(repos.get_changeset(rev).get_changes())
        node = repos.get_node("/", rev)
        list(node.get_entries())
    repos.get_node("src/b.py").get_annotations()
    list(repos.get_node("src").get_history())
    list(repos.get_path_history("README.txt"))
    list(repos.get_changes("/", "1", "/", "7"))
    repos.close()
    after = snapshot(project.path / ".bzr")
    assert after == before
    assert not [p for p in after if os.path.basename(p) == "held"]


def test_reads_work_while_a_push_holds_the_write_lock(tmp_path: Path) -> None:
    tree = make_branch(tmp_path / "b")
    write(tree, "f.txt", "one\n")
    commit(tree, "one", 0)
    writer = Branch.open(str(tmp_path / "b"))
    writer.lock_write()  # what a push in progress holds
    try:
        assert (tmp_path / "b" / ".bzr" / "branch" / "lock" / "held").is_dir()
        repos = open_repos(tmp_path / "b")
        assert repos.get_node("f.txt").get_content().read() == b"one\n"
        assert repos.youngest_rev == "1"
        repos.close()
    finally:
        writer.unlock()


def test_new_commits_visible_after_clear(tmp_path: Path) -> None:
    tree = make_branch(tmp_path / "b")
    write(tree, "f.txt", "one\n")
    commit(tree, "one", 0)
    repos = open_repos(tmp_path / "b")
    assert repos.youngest_rev == "1"
    write(tree, "f.txt", "two\n")
    commit(tree, "two", 1)
    assert repos.youngest_rev == "1"  # one request sees one state
    repos.clear()
    assert repos.youngest_rev == "2"
    assert repos.get_node("f.txt").get_content().read() == b"two\n"
    repos.close()


# -- Several branches in one repository -------------------------------------


@pytest.fixture
def shared(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A shared repository with trunk and feature/x forked from trunk 1."""
    fmt = controldir.format_registry.make_controldir(FORMAT)
    root = tmp_path / "repo"
    controldir.ControlDir.create(str(root), format=fmt).create_repository(shared=True)
    trunk = controldir.ControlDir.create_branch_convenience(
        str(root / "trunk"), format=fmt
    ).controldir.open_workingtree()
    revids = {}
    write(trunk, "main.c", "int main;\n")
    revids["trunk:1"] = commit(trunk, "trunk one", 0)
    (root / "feature").mkdir()
    feature = trunk.branch.controldir.sprout(str(root / "feature" / "x")).open_workingtree()
    write(feature, "feature.c", "feature\n")
    revids["feature/x:2"] = commit(feature, "feature two", 1)
    write(trunk, "main.c", "int main(void);\n")
    revids["trunk:2"] = commit(trunk, "trunk two", 2)
    write(feature, "feature.c", "feature 3\n")
    revids["feature/x:3"] = feature.commit(
        "feature three", rev_id=b"odd:rev/id,3", timestamp=T0 + 3 * HOUR, timezone=0
    )
    return root, revids


def quoted(revid: bytes) -> str:
    return quote_revid(revid)


def test_shared_repository_layout(shared: tuple[Path, dict[str, bytes]]) -> None:
    root, _revids = shared
    repos = open_repos(root)
    try:
        assert repos.multi
        top = repos.get_node("/")
        assert names(top) == ["feature", "trunk"]
        feature = repos.get_node("feature")
        assert feature.isdir and names(feature) == ["x"]
        assert [c.path for c in feature.get_entries()] == ["feature/x"]
        assert names(repos.get_node("trunk")) == ["main.c"]
        assert names(repos.get_node("feature/x")) == ["feature.c", "main.c"]
        assert repos.get_node("feature/x/feature.c").get_content().read() == b"feature 3\n"
        assert repos.get_node("trunk/main.c").get_content().read() == b"int main(void);\n"
        with pytest.raises(NoSuchNode):
            repos.get_node("trunk/feature.c")
        with pytest.raises(NoSuchNode):
            repos.get_node("elsewhere")
    finally:
        repos.close()


def test_shared_repository_revisions(shared: tuple[Path, dict[str, bytes]]) -> None:
    root, revids = shared
    repos = open_repos(root)
    try:
        odd = quoted(revids["feature/x:3"])
        assert odd == "odd%3Arev%2Fid%2C3"  # safe in URLs and log ranges
        assert repos.youngest_rev == odd
        assert list(repos.iter_revs()) == [
            quoted(revids[k]) for k in ("trunk:1", "feature/x:2", "trunk:2", "feature/x:3")
        ]
        # one changeset per commit, shown as <branch>:<revno> of its home
        assert repos.display_rev(quoted(revids["trunk:1"])) == "trunk:1"
        assert repos.display_rev(odd) == "feature/x:3"
        assert repos.normalize_rev("feature/x:3") == odd
        assert repos.normalize_rev("trunk:2") == quoted(revids["trunk:2"])
        assert repos.normalize_rev("2") == quoted(revids["trunk:2"])  # bare revno: trunk
        assert repos.normalize_rev(f"revid:{revids['trunk:1'].decode()}") == quoted(
            revids["trunk:1"]
        )
        with pytest.raises(NoSuchChangeset):
            repos.normalize_rev("feature/x:9")
        cset = repos.get_changeset(odd)
        assert cset.message == "feature three"
        assert list(cset.get_changes()) == [
            (
                "feature/x/feature.c",
                Node.FILE,
                Changeset.EDIT,
                "feature/x/feature.c",
                quoted(revids["feature/x:2"]),
            ),
        ]
        assert cset.get_branches() == [("feature/x", True)]
        shared_cset = repos.get_changeset(quoted(revids["trunk:1"]))
        assert sorted(shared_cset.get_branches()) == [("feature/x", False), ("trunk", False)]
        paths = [change[0] for change in shared_cset.get_changes()]
        assert paths == ["trunk/main.c"]
        # the timeline shows the shared first commit once
        everything = [
            c.rev
            for c in repos.get_changesets(
                datetime(2000, 1, 1, tzinfo=utc), datetime(2100, 1, 1, tzinfo=utc)
            )
        ]
        assert everything == list(reversed(list(repos.iter_revs())))
        assert repos.previous_rev(odd) == quoted(revids["trunk:2"])  # repository-wide
        assert repos.previous_rev(odd, "feature/x") == quoted(revids["feature/x:2"])
        assert repos.next_rev(quoted(revids["trunk:1"]), "trunk") == quoted(revids["trunk:2"])
    finally:
        repos.close()


def test_shared_repository_branch_as_of_other_revision(
    shared: tuple[Path, dict[str, bytes]],
) -> None:
    root, revids = shared
    repos = open_repos(root)
    try:
        at_trunk_2 = quoted(revids["trunk:2"])
        # feature/x at the time of trunk 2 is its revision 2
        node = repos.get_node("feature/x/feature.c", at_trunk_2)
        assert node.get_content().read() == b"feature\n"
        assert node.rev == quoted(revids["feature/x:2"])
        # at trunk 1 only trunk's first revision existed in feature/x
        assert names(repos.get_node("/", quoted(revids["trunk:1"]))) == ["feature", "trunk"]
        with pytest.raises(NoSuchNode):
            repos.get_node("feature/x/feature.c", quoted(revids["trunk:1"]))
        history = [rev for _p, rev, _c in repos.get_node("/").get_history()]
        assert history == list(reversed(list(repos.iter_revs())))
    finally:
        repos.close()


def test_branch_as_repository_dir_in_multi_layout(shared: tuple[Path, dict[str, bytes]]) -> None:
    root, _revids = shared
    repos = open_repos(root / "feature" / "x")
    try:
        assert not repos.multi
        assert list(repos.iter_revs()) == ["1", "2", "3"]
        assert repos.get_changeset_uid("3") == "odd:rev/id,3"
    finally:
        repos.close()


def test_warm_requests_do_not_open_unchanged_branches(
    shared: tuple[Path, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, revids = shared
    past = T0  # tip and tag files that settled long ago
    for branch in ("trunk", "feature/x"):
        for name in ("last-revision", "tags"):
            os.utime(root / branch / ".bzr" / "branch" / name, (past, past))
    repos = open_repos(root)
    listing = [(n.path, n.created_rev) for n in repos.get_node("/").get_entries()]
    jumps = list(repos.get_quickjump_entries(None))
    repos.close()

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("a branch was opened")

    monkeypatch.setattr(storage.confinement, "open_branch", no_open)
    repos = open_repos(root)
    try:
        assert [(n.path, n.created_rev) for n in repos.get_node("/").get_entries()] == listing
        assert list(repos.get_quickjump_entries(None)) == jumps
        assert repos.youngest_rev == quoted(revids["feature/x:3"])
        assert repos.get_changeset(repos.youngest_rev).message == "feature three"
        with pytest.raises(AssertionError, match="opened"):
            repos.get_node("trunk/main.c").get_content()  # file data needs the branch
    finally:
        repos.close()


def test_diff_between_branches(shared: tuple[Path, dict[str, bytes]]) -> None:
    root, revids = shared
    repos = open_repos(root)
    try:
        changes = {
            (old and old.path, new and new.path, change)
            for old, new, _kind, change in repos.get_changes("trunk", None, "feature/x", None)
        }
        assert changes == {
            (None, "feature/x/feature.c", Changeset.ADD),
            ("trunk/main.c", "feature/x/main.c", Changeset.EDIT),
        }
        with pytest.raises(TracError):
            list(repos.get_changes("/", None, "/", quoted(revids["trunk:1"])))
    finally:
        repos.close()


def test_cached_multi_branch_sync_finds_late_branches(
    tmp_path: Path, shared: tuple[Path, dict[str, bytes]]
) -> None:
    root, revids = shared
    env = EnvironmentStub(enable=["trac.*", "trac_breezy.*"])
    try:
        env.config.set("bzr", "cached_repository", "true")
        DbRepositoryProvider(env).add_repository("multi", str(root), "bzr")
        repos = RepositoryManager(env).get_repository("multi")
        assert isinstance(repos, BzrCachedRepository)
        repos.sync()

        def cached_revs() -> list[str]:
            rows = env.db_query(
                "SELECT rev FROM revision WHERE repos=%s ORDER BY time", (repos.id,)
            )
            return [rev for (rev,) in rows]

        assert cached_revs() == list(repos.repos.iter_revs())
        assert repos.youngest_rev == quoted(revids["feature/x:3"])
        # a branch pushed later whose commit is *older* than everything cached
        trunk = Branch.open(str(root / "trunk"))
        late = trunk.controldir.sprout(str(root / "late")).open_workingtree()
        write(late, "late.txt", "late\n")
        late_revid = late.commit("late but old", timestamp=T0 - 10 * HOUR, timezone=0)
        repos.sync()
        assert quoted(late_revid) in cached_revs()
        assert len(cached_revs()) == 5
        assert repos.get_changeset(quoted(late_revid)).message == "late but old"
        assert list(repos.get_changeset(quoted(late_revid)).get_changes()) == [
            ("late/late.txt", Node.FILE, Changeset.ADD, None, None)
        ]
    finally:
        env.reset_db()


# -- Trac integration --------------------------------------------------------


@pytest.fixture
def trac_env() -> Iterator[EnvironmentStub]:
    env = EnvironmentStub(enable=["trac.*", "trac_breezy.*"])
    yield env
    env.reset_db()


def test_connector_registered(trac_env: EnvironmentStub, project: Project) -> None:
    rm = RepositoryManager(trac_env)
    assert "bzr" in rm.get_supported_types()
    DbRepositoryProvider(trac_env).add_repository("proj", str(project.path), "bzr")
    repos = rm.get_repository("proj")
    assert isinstance(repos, BzrRepository)
    assert repos.get_node("src/b.py").created_rev == "7"
    assert ("Breezy", breezy.version_string) in list(trac_env.system_info)


def test_cached_repository_sync(trac_env: EnvironmentStub, tmp_path: Path) -> None:
    trac_env.config.set("bzr", "cached_repository", "true")
    tree = make_branch(tmp_path / "b")
    write(tree, "f.txt", "one\n")
    commit(tree, "one, refs #1", 0)
    side = tree.branch.controldir.sprout(str(tmp_path / "side")).open_workingtree()
    write(side, "s.txt", "side\n")
    commit(side, "side", 1)
    tree.rename_one("f.txt", "g.txt")
    commit(tree, "rename", 2)
    tree.merge_from_branch(side.branch)
    commit(tree, "merge", 3)

    DbRepositoryProvider(trac_env).add_repository("proj", str(tmp_path / "b"), "bzr")
    rm = RepositoryManager(trac_env)
    repos = rm.get_repository("proj")
    assert isinstance(repos, BzrCachedRepository)
    repos.sync()
    rows = trac_env.db_query(
        "SELECT rev, message FROM revision WHERE repos=%s ORDER BY time", (repos.id,)
    )
    assert rows == [("1", "one, refs #1"), ("1.1.1", "side"), ("2", "rename"), ("3", "merge")]
    assert repos.youngest_rev == "3"
    assert list(repos.get_changeset("2").get_changes()) == [
        ("g.txt", Node.FILE, Changeset.MOVE, "f.txt", "1")
    ]
    assert repos.get_changeset("1.1.1").message == "side"
    assert repos.get_changeset("3").get_properties()["Parents"] == ["2", "1.1.1"]
    assert repos.get_node("g.txt").get_content().read() == b"one\n"
    assert repos.normalize_rev(None) == "3" and repos.display_rev("1.1.1") == "1.1.1"
    revs = [
        c.rev
        for c in repos.get_changesets(
            datetime(2000, 1, 1, tzinfo=utc), datetime(2100, 1, 1, tzinfo=utc)
        )
    ]
    assert revs == ["3", "2", "1.1.1", "1"]

    write(tree, "g.txt", "two\n")
    commit(tree, "four", 4)
    assert repos.youngest_rev == "3"  # until synced
    repos.sync()
    assert repos.youngest_rev == "4"
    assert repos.get_changeset("4").message == "four"
    count = trac_env.db_query("SELECT COUNT(*) FROM revision WHERE repos=%s", (repos.id,))
    assert count == [(5,)]
    repos.sync(clean=True)  # trac-admin repository resync
    count = trac_env.db_query("SELECT COUNT(*) FROM revision WHERE repos=%s", (repos.id,))
    assert count == [(5,)]


def test_cached_repository_of_empty_branch(trac_env: EnvironmentStub, tmp_path: Path) -> None:
    make_branch(tmp_path / "e")
    trac_env.config.set("bzr", "cached_repository", "true")
    DbRepositoryProvider(trac_env).add_repository("e", str(tmp_path / "e"), "bzr")
    repos = RepositoryManager(trac_env).get_repository("e")
    repos.sync()
    assert repos.youngest_rev is None
    assert trac_env.db_query("SELECT COUNT(*) FROM revision") == [(0,)]


def test_trac_pages_render(trac_env: EnvironmentStub, project: Project) -> None:
    from trac.versioncontrol.web_ui.browser import BrowserModule
    from trac.versioncontrol.web_ui.changeset import ChangesetModule
    from trac.versioncontrol.web_ui.log import LogModule

    DbRepositoryProvider(trac_env).add_repository("proj", str(project.path), "bzr")
    browser, changesets = BrowserModule(trac_env), ChangesetModule(trac_env)
    page = render_page(trac_env, browser, "/browser/proj/src")
    assert 'href="/trac.cgi/browser/proj/src/b.py"' in page
    page = render_page(trac_env, browser, "/browser/proj/src/b.py", rev="5", annotate="blame")
    # Tags aside: once any test has loaded Trac's plugins, Pygments colours
    # the Python source word by word.
    assert "side first line" in re.sub(r"<[^>]+>", "", page)
    assert 'href="/trac.cgi/changeset/3.1.1/proj"' in page
    page = render_page(trac_env, browser, "/browser/proj/data.bin")
    assert "data.bin" in page
    page = render_page(trac_env, changesets, "/changeset/3/proj")
    assert "src/a.py" in page and "src/b.py" in page
    page = render_page(trac_env, changesets, "/changeset/5/proj")
    assert 'href="/trac.cgi/changeset/3.1.2/proj"' in page  # Parents, Merged
    page = render_page(trac_env, LogModule(trac_env), "/log/proj/src/b.py", limit="2")
    assert "Edit b.py again (7)" in page and "Edit b.py again (6)" in page
    assert "Side: prepend a line" not in page
    page = render_page(
        trac_env, LogModule(trac_env), "/log/proj/README.txt", mode="path_history", rev="7"
    )
    assert "Rename a.py to b.py, drop README" in page and "Initial import" in page


@pytest.mark.parametrize("cached", ["false", "true"])
def test_notify_closes_ticket(bzr_home: Path, tmp_path: Path, cached: str) -> None:
    from trac.env import Environment
    from trac.ticket.model import Ticket

    tree = make_branch(tmp_path / "b")
    write(tree, "f.txt", "one\n")
    commit(tree, "Start", 0)
    write(tree, "f.txt", "two\n")
    commit(tree, "Fix the crash, fixes #1 and refs #2", 1)

    env_path = str(tmp_path / "env")
    env = Environment(
        env_path,
        create=True,
        options=[
            ("components", "tracopt.ticket.commit_updater.*", "enabled"),
            ("components", "trac_breezy.*", "enabled"),
            ("trac", "base_url", "http://example.org/trac"),
            ("bzr", "cached_repository", cached),
        ],
    )
    try:
        for summary in ("crash", "other"):
            ticket = Ticket(env)
            ticket.populate({"summary": summary, "reporter": "me", "status": "new"})
            ticket.insert()
        DbRepositoryProvider(env).add_repository("proj", str(tmp_path / "b"), "bzr")
    finally:
        env.shutdown()

    assert notify_new_revisions(env_path, "proj", ["2"]) == []

    env = Environment(env_path)
    try:
        closed, referenced = Ticket(env, 1), Ticket(env, 2)
        assert closed["status"] == "closed" and closed["resolution"] == "fixed"
        assert referenced["status"] == "new"
        for ticket in (closed, referenced):
            comments = [c for c in ticket.get_changelog() if c[2] == "comment"]
            assert len(comments) == 1
            assert 'changeset:"2/proj"' in comments[0][4]
            assert comments[0][1] == "Test Committer <committer@example.com>"
    finally:
        env.shutdown()
    assert notify_new_revisions(env_path, "nope", ["2"])  # an error message, not a crash


def render_page(env: EnvironmentStub, module: Any, path_info: str, **args: str) -> str:
    """Run a Trac request handler and render its template, as Trac would."""
    from trac.web.chrome import Chrome

    req = MockRequest(env, path_info=path_info, args=args)
    assert module.match_request(req)
    template, data, *rest = module.process_request(req)
    metadata = dict(rest[0] if rest else {}, iterable=False)
    return Chrome(env).render_template(req, template, data, metadata).decode()


def test_trac_pages_render_multi_branch(
    trac_env: EnvironmentStub, shared: tuple[Path, dict[str, bytes]]
) -> None:
    from trac.timeline.web_ui import TimelineModule
    from trac.versioncontrol.web_ui.browser import BrowserModule
    from trac.versioncontrol.web_ui.changeset import ChangesetModule
    from trac.versioncontrol.web_ui.log import LogModule

    root, revids = shared
    DbRepositoryProvider(trac_env).add_repository("multi", str(root), "bzr")
    browser = BrowserModule(trac_env)
    page = render_page(trac_env, browser, "/browser/multi")
    assert 'href="/trac.cgi/browser/multi/trunk"' in page
    assert 'href="/trac.cgi/browser/multi/feature"' in page
    page = render_page(trac_env, browser, "/browser/multi/feature")
    assert 'href="/trac.cgi/browser/multi/feature/x"' in page
    odd = quoted(revids["feature/x:3"])
    page = render_page(trac_env, browser, "/browser/multi/feature/x/feature.c", rev=odd)
    assert "feature 3" in re.sub(r"<[^>]+>", "", page)  # the code, without highlighting
    page = render_page(trac_env, ChangesetModule(trac_env), f"/changeset/{odd}/multi")
    assert "feature/x:3" in page and "feature/x/feature.c" in page
    native = quoted(revids["trunk:2"])  # committer@example.com-... has an "@"
    assert "@" not in native and "%40" in native
    page = render_page(trac_env, ChangesetModule(trac_env), f"/changeset/{native}/multi")
    assert "trunk:2" in page and "trunk two" in page
    page = render_page(trac_env, LogModule(trac_env), "/log/multi/feature/x")
    assert "feature three" in page and "trunk one" in page and "trunk two" not in page
    page = render_page(
        trac_env,
        TimelineModule(trac_env),
        "/timeline",
        **{"from": "2024-03-02", "daysback": "5", "changeset": "on"},
    )
    for message in ("trunk one", "feature two", "trunk two", "feature three"):
        assert page.count(message) == 1, message
