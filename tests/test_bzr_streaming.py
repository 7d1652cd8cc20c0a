"""File content reaches Trac as a stream, never whole in memory.

Four anonymous downloads of a 150 MB file at once took the container from
214 MB to 1.2 GB: `BzrNode.get_content` was a BytesIO of the whole text, and
Breezy's own reads inflate the whole compressed group of a text (about 2.6
times the file size, measured).  A fulltext is now inflated straight from
its pack file a chunk at a time; a delta (an older version after a repack)
is still read through Breezy, whole, and must stay byte-identical.
tracemalloc measures the peak of Python's allocations (zlib's included).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from breezy.branch import Branch
from test_bzr_backend import open_repos, render_page
from test_bzr_storage import commit, make_branch, write
from trac.test import EnvironmentStub
from trac.versioncontrol.api import DbRepositoryProvider

from trac_breezy.trac_app.bzr import content
from trac_breezy.trac_app.bzr.repository import BzrRepository

pytestmark = pytest.mark.usefixtures("fresh_bzr_caches")

SIZE = 24 * 1024 * 1024
PREVIEW = 262144  # Trac's default [mimeviewer] max_preview_size
# Peak traced memory allowed for streaming any file: a few 64 KB chunks, zlib's
# window and Breezy's indexes; the whole file would be SIZE.
BOUND = 2 * 1024 * 1024


def big_data() -> bytes:
    """Half incompressible, half text: zlib cannot make it small."""
    noise = random.Random(1).randbytes(SIZE // 2)
    text = b"".join(b"line %08d of a large text file\n" % i for i in range(SIZE // 64))
    return noise + text[: SIZE - len(noise)]


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def peak_while(action: Callable[[], Any]) -> tuple[Any, int]:
    """(what `action` returns, the peak of traced memory while it ran)."""
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def chunked_sha1(stream: Any, size: int = 4096) -> tuple[str, int]:
    """Read a stream the way Trac's export does; (sha1, length)."""
    digest, total = hashlib.sha1(), 0
    with stream:
        while chunk := stream.read(size):
            digest.update(chunk)
            total += len(chunk)
    return digest.hexdigest(), total


@pytest.fixture(scope="module")
def big(bzr_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A branch with two versions of a 24 MB file (revisions 1 and 2) and a small one."""
    path = tmp_path_factory.mktemp("big") / "b"
    tree = make_branch(path)
    first = big_data()
    second = first[:-16] + b"the end changed\n"  # a repack stores one as a delta
    write(tree, "big.bin", first)
    write(tree, "small.txt", "small\n")
    commit(tree, "one", 0)
    write(tree, "big.bin", second)
    commit(tree, "two", 1)
    return {"path": path, "sha1": {"1": sha1(first), "2": sha1(second)}, "head": second[:PREVIEW]}


@pytest.fixture
def repos(big: dict[str, Any]) -> Iterator[BzrRepository]:
    repos = open_repos(big["path"])
    yield repos
    repos.close()


def test_a_download_streams_in_bounded_memory(repos: BzrRepository, big: dict[str, Any]) -> None:
    node = repos.get_node("big.bin")
    (digest, length), peak = peak_while(lambda: chunked_sha1(node.get_content()))
    assert (digest, length) == (big["sha1"]["2"], SIZE)
    assert peak < BOUND, f"{peak / 2**20:.1f} MB traced to stream a {SIZE / 2**20:.0f} MB file"


def test_a_preview_reads_only_what_it_shows(repos: BzrRepository, big: dict[str, Any]) -> None:
    node = repos.get_node("big.bin")

    def preview() -> bytes:
        with node.get_content() as stream:
            return stream.read(PREVIEW)

    head, peak = peak_while(preview)
    assert head == big["head"]
    assert peak < BOUND + PREVIEW, f"{peak / 2**20:.1f} MB traced for a preview"


def test_the_length_comes_from_the_inventory(
    repos: BzrRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = repos.get_node("big.bin")

    def no_read(*args: object) -> None:
        raise AssertionError("the file was read")

    monkeypatch.setattr(content, "open_text", no_read)
    assert node.get_content_length() == SIZE


def test_trac_s_browser_page_of_a_large_file(repos: BzrRepository, big: dict[str, Any]) -> None:
    from trac.versioncontrol.web_ui.browser import BrowserModule

    env = EnvironmentStub(enable=["trac.*", "trac_breezy.*"])
    try:
        DbRepositoryProvider(env).add_repository("proj", str(big["path"]), "bzr")
        browser = BrowserModule(env)
        render_page(env, browser, "/browser/proj/small.txt")  # Trac's own first-use costs
        page, peak = peak_while(lambda: render_page(env, browser, "/browser/proj/big.bin"))
        assert "big.bin" in re.sub(r"<[^>]+>", "", page)
        assert peak < SIZE / 4, f"{peak / 2**20:.1f} MB traced to render the page"
    finally:
        env.reset_db()


def test_texts_stored_as_deltas_are_read_whole_and_identical(
    big: dict[str, Any], tmp_path: Path
) -> None:
    copy = tmp_path / "packed"
    Branch.open(str(big["path"])).controldir.sprout(str(copy))
    Branch.open(str(copy)).repository.pack()  # version 1 becomes a delta of version 2
    repos = open_repos(copy)
    try:
        handle = repos._handles[""]
        tree = handle.tree(handle.index.revids["1"])
        key = (tree.path2id("big.bin"), tree.get_file_revision("big.bin"))
        assert content._fulltext_pieces(handle.repository.texts, key) is None  # a delta
        for rev in ("1", "2"):
            node = repos.get_node("big.bin", rev)
            assert chunked_sha1(node.get_content(), 65536) == (big["sha1"][rev], SIZE)
        node = repos.get_node("big.bin", "2")  # the newest version stays a fulltext
        (digest, _length), peak = peak_while(lambda: chunked_sha1(node.get_content()))
        assert digest == big["sha1"]["2"] and peak < BOUND
    finally:
        repos.close()


def test_texts_inside_a_shared_group_and_odd_reads(tmp_path: Path) -> None:
    tree = make_branch(tmp_path / "b")
    files = {
        "empty.txt": b"",
        "one.txt": b"x",
        "a.txt": b"hello\n" * 100,
        "mid.bin": os.urandom(200_000),
        "z.txt": b"z\n" * 1000,
    }
    for name, data in files.items():
        write(tree, name, data)
    commit(tree, "files", 0)
    Branch.open(str(tmp_path / "b")).repository.pack()  # the texts now share one group
    repos = open_repos(tmp_path / "b")
    try:
        for name, data in files.items():
            assert repos.get_node(name).get_content().read() == data, name
        handle = repos._handles[""]
        tree = handle.tree(handle.tip)
        texts = handle.repository.texts
        keys = [(tree.path2id(name), tree.get_file_revision(name)) for name in files]
        streamed = [k for k in keys if content._fulltext_pieces(texts, k) is not None]
        assert any(content._locate(texts, k)[2] > 0 for k in streamed)  # skipped to
        stream = repos.get_node("mid.bin").get_content()
        parts = [stream.read(1), stream.read(70_000), stream.read(0), stream.read()]
        assert b"".join(parts) == files["mid.bin"] and stream.read(10) == b""
        stream.close()
        assert stream.closed
    finally:
        repos.close()
