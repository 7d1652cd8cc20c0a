"""Unit tests for the storage layer of the Bazaar backend, without Trac.

`trac_breezy.trac_app.bzr.storage`, `index` and `caches` read branches
through Breezy and must import nothing from Trac; these tests use them
directly on branches built in a temporary directory.  The branch-building
helpers here are shared with `test_bzr_backend`.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import breezy.bzr.bzrdir  # noqa: F401 - sets Breezy's default control-dir format
import pytest
from breezy import controldir

from trac_breezy.trac_app.bzr import storage
from trac_breezy.trac_app.bzr.caches import LRU, clear_caches, process_cache
from trac_breezy.trac_app.bzr.storage import (
    ADD,
    DELETE,
    DIRECTORY,
    EDIT,
    FILE,
    MOVE,
    BranchHandle,
    BzrStorageError,
    CannotOpenBranch,
    Change,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0
FORMAT = "2a"
STORAGE_MODULES = ("storage", "confinement", "content", "index", "caches")
ROOT = Path(__file__).resolve().parent.parent


# -- Helpers, also used by test_bzr_backend -----------------------------------


@contextlib.contextmanager
def isolated_breezy(home: Path) -> Iterator[None]:
    """An isolated HOME and committer identity for Breezy, and empty caches."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("BRZ_EMAIL", "Test Committer <committer@example.com>")
        mp.delenv("BZR_EMAIL", raising=False)
        mp.delenv("BRZ_HOME", raising=False)
        clear_caches()
        yield


def make_branch(path: Path) -> Any:
    """A new standalone branch with a working tree; returns the tree."""
    fmt = controldir.format_registry.make_controldir(FORMAT)
    branch = controldir.ControlDir.create_branch_convenience(str(path), format=fmt)
    return branch.controldir.open_workingtree()


def make_shared_repository(path: Path) -> None:
    fmt = controldir.format_registry.make_controldir(FORMAT)
    controldir.ControlDir.create(str(path), format=fmt).create_repository(shared=True)


def write(tree: Any, relpath: str, data: str | bytes, add: bool = True) -> None:
    full = Path(tree.basedir, relpath)
    full.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    full.write_bytes(data)
    if add and not tree.is_versioned(relpath):
        tree.smart_add([str(full)])  # also adds new parent directories


def commit(tree: Any, message: str, hours: float) -> bytes:
    return tree.commit(message, timestamp=T0 + hours * HOUR, timezone=0)


# -- Fixtures -----------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("fresh_bzr_caches")


@pytest.fixture
def branch(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """1 add a.txt, d/x.txt; 2 rename a.txt to b.txt, delete d/x.txt (tagged);
    1.1.1 (side) add s.txt; 3 merge the side branch."""
    tree = make_branch(tmp_path / "b")
    revids = {}
    write(tree, "a.txt", "one\ntwo\n")
    write(tree, "d/x.txt", "x\n")
    revids["1"] = commit(tree, "one", 0)
    side = tree.branch.controldir.sprout(str(tmp_path / "side")).open_workingtree()
    tree.rename_one("a.txt", "b.txt")
    tree.remove(["d/x.txt"], keep_files=False)
    revids["2"] = commit(tree, "two", 1)
    tree.branch.tags.set_tag("v2", revids["2"])
    write(side, "s.txt", "side\n")
    revids["1.1.1"] = commit(side, "side", 2)
    tree.merge_from_branch(side.branch)
    revids["3"] = commit(tree, "merge", 3)
    return tmp_path / "b", revids


@pytest.fixture
def handle(branch: tuple[Path, dict[str, bytes]]) -> Iterator[BranchHandle]:
    handle = BranchHandle(str(branch[0]), "")
    yield handle
    handle.close()


# -- Tests ---------------------------------------------------------------------


def test_storage_modules_import_nothing_from_trac() -> None:
    modules = ", ".join(f"trac_breezy.trac_app.bzr.{name}" for name in STORAGE_MODULES)
    code = (
        f"import sys, {modules}\n"
        "trac = sorted(m for m in sys.modules if m == 'trac' or m.startswith('trac.'))\n"
        "assert not trac, trac\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_graph_and_revisions(handle: BranchHandle, branch: tuple[Path, dict[str, bytes]]) -> None:
    _path, revids = branch
    index = handle.index
    assert handle.tip == revids["3"] == index.tip
    assert [index.revnos[r] for r in index.order] == ["1", "2", "1.1.1", "3"]
    assert index.mainline == [revids["1"], revids["2"], revids["3"]]
    assert index.parents[revids["3"]] == (revids["2"], revids["1.1.1"])
    assert index.merged(revids["3"]) == [revids["1.1.1"]]
    assert index.merged_in(revids["1.1.1"]) == revids["3"]
    assert index.first_child(revids["1"]) == revids["2"]
    assert list(index.ancestry(revids["1.1.1"])) == [revids["1.1.1"], revids["1"]]
    info = handle.revinfo(revids["2"])
    assert (info.message, info.timestamp, info.author) == (
        "two",
        T0 + HOUR,
        "Test Committer <committer@example.com>",
    )
    assert {revid: sorted(names) for revid, names in handle.tags().items()} == {revids["2"]: ["v2"]}


def test_changes_use_trac_kinds(
    handle: BranchHandle, branch: tuple[Path, dict[str, bytes]]
) -> None:
    _path, revids = branch
    assert (ADD, DELETE, EDIT, MOVE, DIRECTORY, FILE) == (
        "add",
        "delete",
        "edit",
        "move",
        "dir",
        "file",
    )
    assert sorted(handle.changes(revids["1"])) == [
        Change("a.txt", FILE, ADD, None),
        Change("d", DIRECTORY, ADD, None),
        Change("d/x.txt", FILE, ADD, None),
    ]
    assert sorted(handle.changes(revids["2"])) == [
        Change("b.txt", FILE, MOVE, "a.txt"),
        Change("d/x.txt", FILE, DELETE, "d/x.txt"),
    ]
    assert handle.changes(revids["3"]) == (Change("s.txt", FILE, ADD, None),)
    assert handle.diff(revids["1"], revids["3"], ["d"]) == [
        Change("d/x.txt", FILE, DELETE, "d/x.txt")
    ]


def test_trees_and_files(handle: BranchHandle, branch: tuple[Path, dict[str, bytes]]) -> None:
    _path, revids = branch
    tip = revids["3"]
    assert sorted(name for name, _entry in handle.child_entries(tip, "")) == ["b.txt", "d", "s.txt"]
    entry = handle.entry(tip, "b.txt")
    assert entry is not None and entry.kind == "file" and entry.revision == revids["2"]
    assert handle.entry(tip, "a.txt") is None
    assert handle.open_file(tip, "b.txt").read() == b"one\ntwo\n"
    assert handle.annotate(tip, "b.txt") == [revids["1"], revids["1"]]
    assert handle.last_changes(tip)[""] == revids["1.1.1"]  # newest change below the root
    assert set(handle.subtree(revids["1"], "")) == {"a.txt", "d", "d/x.txt"}


def test_find_branches_and_multi_index(tmp_path: Path) -> None:
    make_shared_repository(tmp_path)
    trunk = make_branch(tmp_path / "trunk")
    write(trunk, "f.txt", "one\n")
    first = commit(trunk, "one", 0)
    (tmp_path / "feature").mkdir()
    feature = trunk.branch.controldir.sprout(str(tmp_path / "feature" / "x")).open_workingtree()
    write(feature, "g.txt", "two\n")
    second = commit(feature, "two", 1)
    (tmp_path / "plain" / "dir").mkdir(parents=True)
    assert storage.find_branches(str(tmp_path)) == ["feature/x", "trunk"]
    handles = [BranchHandle(str(tmp_path / r), r) for r in ("trunk", "feature/x")]
    try:
        multi = storage.multi_index(str(tmp_path), handles)
        assert multi.order == [first, second]
        assert multi.home == {first: "trunk", second: "feature/x"}  # trunk comes first
        assert multi.times == [T0, T0 + HOUR]
        assert storage.multi_index(str(tmp_path), handles) is multi  # cached by tips
    finally:
        for handle in handles:
            handle.close()


def test_errors_name_the_branch(tmp_path: Path, handle: BranchHandle) -> None:
    missing = BranchHandle(str(tmp_path / "gone"), "")
    with pytest.raises(CannotOpenBranch, match="is not a Bazaar branch"):
        missing.tip  # noqa: B018
    assert issubclass(CannotOpenBranch, BzrStorageError)
    with pytest.raises(BzrStorageError, match=f'Cannot read the Bazaar branch at "{handle.path}"'):
        handle.tree(b"no-such-revision")
    error = OSError(2, "No such file")
    assert storage.describe(error) == "FileNotFoundError: [Errno 2] No such file"


def test_lru_and_process_caches() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recent
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (1, None, 3)
    cache = process_cache(4)
    cache.put("k", "v")
    clear_caches()
    assert cache.get("k") is None
