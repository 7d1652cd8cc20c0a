"""Memory: what a request opens of Breezy is freed when the request is over.

Every Bazaar pack repository holds a reference cycle through vcsgraph's Rust
parents providers, which the garbage collector cannot see into, so a
repository nobody uses any more was never freed: ~1 MB per Trac page of a
1,000-revision branch, and ~10 repositories per `brz branch` served
(bench/memory_probe.py; trac_breezy/trac_app/bzr/collectable.py). These tests
render Trac pages through trac.wsgi's application, pull through bzr.wsgi's,
and open repositories the way Breezy's smart-server handlers do, and count
the repositories still alive afterwards.
"""

from __future__ import annotations

import gc
import io
import runpy
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from breezy.branch import Branch
from breezy.bzr.pack_repo import PackRepository
from smart_harness import Server
from stack import ROOT, Brz
from test_bzr_storage import commit, make_branch, write

from trac_breezy.setenv import READ_ONLY, TracEnviron
from trac_breezy.trac_app import gc_freeze
from trac_breezy.trac_app.bzr import collectable
from trac_breezy.trac_app.bzr.caches import LRU
from trac_breezy.trac_app.bzr.storage import BranchHandle

pytestmark = pytest.mark.usefixtures("fresh_bzr_caches")


@pytest.fixture(autouse=True)
def unfrozen_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()


def live_repositories() -> int:
    """Pack repositories alive after a full collection (frozen ones too)."""
    gc.unfreeze()
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), PackRepository))


@pytest.fixture(scope="module")
def branch(bzr_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A branch of 6 revisions: a few files, each changed now and then."""
    path = tmp_path_factory.mktemp("memory") / "trunk"
    tree = make_branch(path)
    for n in range(6):
        write(tree, f"src/file{n % 3}.txt", f"version {n}\n")
        commit(tree, f"change {n}", n)
    return path


def open_and_drop(path: Path) -> weakref.ref:
    """Open a branch and read from it as a smart-server handler does; drop it."""
    branch = Branch.open(str(path))
    with branch.lock_read():
        branch.repository.get_parent_map([branch.last_revision()])
        branch.repository.revision_tree(branch.last_revision()).get_file_text("src/file0.txt")
    return weakref.ref(branch.repository)


def test_a_branch_handle_frees_its_repository(branch: Path) -> None:
    handle = BranchHandle(str(branch), "")
    assert handle.entry(handle.tip, "src/file0.txt") is not None
    assert handle.changes(handle.tip)  # a tree diff: revision trees, inventories
    repository = weakref.ref(handle.repository)
    handle.close()
    del handle
    gc.collect()
    assert repository() is None, "the repository of a closed branch handle was kept"


def test_a_collectable_repository_still_answers(branch: Path) -> None:
    """The weak provider answers like Breezy's own, and keeps its cache state."""
    repository = Branch.open(str(branch)).repository
    with repository.lock_read():
        tip = repository.all_revision_ids()
        expected = repository.get_parent_map(tip)
        heads = repository.get_graph().heads(tip)
    collectable.make_collectable(repository)
    assert repository._unstacked_provider.get_cached_map() is None  # off, as Breezy left it
    with repository.lock_read():
        assert repository.get_parent_map(tip) == expected
        assert repository.get_graph().heads(tip) == heads


def test_sweep_frees_repositories_that_breezy_opened(branch: Path) -> None:
    """What the smart server's handlers open is freed after a sweep."""
    dropped = [open_and_drop(branch) for _ in range(3)]
    assert collectable.sweep() >= 3
    gc.collect()
    assert [ref() for ref in dropped] == [None, None, None]


def test_the_middleware_sweeps_every_so_many_requests(branch: Path) -> None:
    dropped: list[weakref.ref] = []

    def smart_request(environ, start_response):
        if environ.get("opens"):
            dropped.append(open_and_drop(branch))
        start_response("200 OK", [])
        return [b"ok"]

    app = gc_freeze.FreezeHeapWhenWarm(smart_request, every=1 << 20, sweep_every=3)
    for _ in range(4):  # requests 1, 2 and 4 refreeze (which sweeps too)
        app({}, lambda status, headers: None)
    app({"opens": True}, lambda status, headers: None)  # 5: nothing due
    gc.collect()
    assert dropped[0]() is not None, "Breezy's repositories are not freed by a collection"
    app({"opens": True}, lambda status, headers: None)  # 6: a sweep
    assert [ref() for ref in dropped] == [None, None]


def trac_project(tmp_path: Path, branch: Path) -> Path:
    from trac.env import Environment
    from trac.versioncontrol.api import DbRepositoryProvider

    import trac_breezy.trac_app.bzr.connector  # noqa: F401 - the image loads it by entry point

    parent = tmp_path / "trac"
    parent.mkdir()
    env = Environment(
        str(parent / "proj"), create=True, options=[("components", "trac_breezy.*", "enabled")]
    )
    DbRepositoryProvider(env).add_repository("", str(branch), "bzr")
    env.shutdown()
    return parent


def get(app: Any, parent: Path, path: str, query: str = "") -> bytes:
    """One GET through `app` with what Apache's SetEnv and mod_wsgi put in the environ."""
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/trac",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.run_once": False,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        **dict(TracEnviron(env_parent_dir=str(parent)).setenv()),
    }
    status: list[str] = []
    written: list[bytes] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
        status.append(line)
        return written.append

    body = b"".join(app(environ, start_response))
    body = b"".join(written) + body
    assert status[-1].startswith("200"), (path, status, body[-500:])
    return body


PAGES = [
    ("/proj/browser", ""),
    ("/proj/log/", ""),
    ("/proj/changeset/4", ""),
    ("/proj/browser/src/file1.txt", "rev=2"),
    ("/proj/timeline", "from=2024-03-02&daysback=3&changeset=on"),
]


def test_trac_pages_of_a_branch_leave_no_repository_behind(tmp_path: Path, branch: Path) -> None:
    parent = trac_project(tmp_path, branch)
    app = runpy.run_path(str(ROOT / "wsgi" / "trac.wsgi"))["application"]
    for path, query in PAGES:  # warm: templates, the branch's index
        get(app, parent, path, query)
    before = live_repositories()
    for _ in range(3):
        for path, query in PAGES:
            get(app, parent, path, query)
    assert live_repositories() - before <= 0, "Trac pages kept Breezy repositories alive"


def test_pulls_served_leave_no_repository_behind(
    tmp_path: Path, branch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import smart_harness

    bzr_wsgi = runpy.run_path(str(ROOT / "wsgi" / "bzr.wsgi"))["application"]
    bzr_wsgi.sweep_every = 1  # so that what the last requests opened is counted too
    monkeypatch.setattr(smart_harness, "application", bzr_wsgi)  # as mod_wsgi calls it
    root = branch.parent
    server = Server(root, READ_ONLY)
    brz = Brz(tmp_path / "home")
    try:
        before = live_repositories()
        for n in range(2):
            brz("branch", "--no-tree", server.url("trunk"), str(tmp_path / f"pulled-{n}"))
    finally:
        server.stop()
    assert live_repositories() - before <= 0, "pulls served kept Breezy repositories alive"


def test_a_cache_bounded_by_weight_forgets_the_oldest_first() -> None:
    cache: LRU[str, tuple[int, ...]] = LRU(size=100, max_weight=10)
    cache.put("a", (1,) * 4)
    cache.put("b", (1,) * 4)
    assert cache.get("a") is not None  # now b is the oldest
    cache.put("c", (1,) * 4)
    assert (cache.get("b"), len(cache), cache.weight) == (None, 2, 8)
    cache.put("huge", (1,) * 50)  # heavier than the bound alone: kept, alone
    assert (len(cache), cache.weight, cache.get("huge") is not None) == (1, 50, True)
    cache.put("huge", (1,))
    assert cache.weight == 1
