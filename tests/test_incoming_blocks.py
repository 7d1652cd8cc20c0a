"""Pushed groupcompress blocks: the well-used ones are stored as the client
packed them, texts that come one per block are still combined
(trac_breezy/smart_server/incoming_blocks.py).

With the real brz client pushing to the smart-server app (`smart_harness`,
which serves in this process, so the server's compressing can be counted),
and Breezy's own fetch to show what its stock rule does with the same blocks.
"""

from __future__ import annotations

import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest
from histories import make_history
from smart_harness import USERS, Server, with_credentials
from stack import Brz

from trac_breezy.smart_server.incoming_blocks import (
    install_block_reuse,
    installed,
    uninstall_block_reuse,
    well_used,
)

# (block start, block length, text start, text end) of each text, by its key.
Places = dict[tuple[bytes, ...], tuple[int, int, int, int]]


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 revisions over 40 files in one pack, as after an autopack or `brz pack`."""
    home = tmp_path_factory.mktemp("packed-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        path = make_history(
            tmp_path_factory.mktemp("packed") / "local", revisions=120, files=40, seed=11
        )
    Brz(home)("pack", str(path))
    return path


def text_places(path: Path) -> Places:
    from breezy.repository import Repository

    repo = Repository.open(str(path))
    with repo.lock_read():
        entries = repo.texts._index._graph_index.iter_all_entries()
        return {key: tuple(int(n) for n in value.split()) for _, key, value, _ in entries}


def record_count(path: Path) -> int:
    """Texts, inventories, revisions and CHK pages: what a push of everything sends."""
    from breezy.repository import Repository

    repo = Repository.open(str(path))
    with repo.lock_read():
        stores = (repo.texts, repo.inventories, repo.revisions, repo.chk_bytes)
        return sum(len(list(s._index._graph_index.iter_all_entries())) for s in stores)


@pytest.fixture
def compressed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, ...]]:
    """The key of every record this process compresses (the harness serves in it)."""
    from breezy.bzr import groupcompress

    keys: list[tuple[bytes, ...]] = []
    stock = groupcompress.GroupCompressor.compress

    def noting(self, key, *args, **kwargs):
        keys.append(key)
        return stock(self, key, *args, **kwargs)

    monkeypatch.setattr(groupcompress.GroupCompressor, "compress", noting)
    return keys


def test_a_pushed_well_packed_history_is_stored_without_compressing_it_again(
    packed: Path, server: Server, tmp_path: Path, compressed: list
) -> None:
    brz = Brz(tmp_path / "home")
    with_credentials(brz, server, "alice", USERS["alice"])
    brz("push", server.url("trunk"), "-d", str(packed))

    assert len(compressed) <= record_count(packed) // 100
    assert text_places(server.root / "trunk") == text_places(packed)
    brz("check", str(server.root / "trunk"))
    assert brz.revno(server.root / "trunk") == brz.revno(packed)


def test_breezy_alone_compresses_every_record_again(
    packed: Path, tmp_path: Path, compressed: list
) -> None:
    """What the test above would see without the rule: it can fail."""
    from breezy.branch import Branch

    was_installed = installed()
    uninstall_block_reuse()
    try:
        Branch.open(str(packed)).controldir.sprout(
            str(tmp_path / "copy"), create_tree_if_local=False
        )
    finally:
        if was_installed:
            install_block_reuse()
    assert len(compressed) == record_count(packed)


def test_texts_that_come_one_per_block_are_combined(
    packed: Path, server: Server, tmp_path: Path
) -> None:
    brz = Brz(tmp_path / "home")
    with_credentials(brz, server, "alice", USERS["alice"])
    brz("push", server.url("trunk"), "-d", str(packed))
    work = tmp_path / "work"
    brz("branch", str(packed), str(work))
    for n in range(3):  # three commits, one changed file each: three blocks of one text
        with open(work / "dir0" / "file0.txt", "a") as changed:
            changed.write(f"fresh line {n}\n")
        brz("commit", "-m", f"fresh {n}", cwd=work)
    new = text_places(work).keys() - text_places(packed).keys()
    assert len({text_places(work)[key][:2] for key in new}) == 3

    brz("push", server.url("trunk"), "-d", str(work))
    target = text_places(server.root / "trunk")
    assert len({target[key][:2] for key in new}) == 1


# -- what a block kept whole must pass: every text read back ------------------------


def pushed_block(data: bytes, texts: list[tuple[int, int]]) -> Any:
    """A block manager as the server builds it from a pushed stream."""
    from breezy.bzr import groupcompress

    manager = groupcompress._LazyGroupContentManager(
        groupcompress.GroupCompressBlock.from_bytes(data)
    )
    for n, (start, end) in enumerate(texts):
        manager.add_factory((b"file", b"rev-%d" % n), (), start, end)
    return manager


def two_texts() -> tuple[bytes, list[tuple[int, int]]]:
    """A block of a fulltext and a delta against it, and where each lies."""
    from breezy.bzr import groupcompress

    compressor = groupcompress.GroupCompressor()
    text = b"a line of a file\n" * 50
    places = [
        compressor.compress((b"file", b"rev-0"), [text], len(text), None)[1:3],
        compressor.compress((b"file", b"rev-1"), [text + b"more\n"], len(text) + 5, None)[1:3],
    ]
    return compressor.flush().to_bytes(), places


def with_header(z_content: bytes, declared: int) -> bytes:
    return b"gcb1z\n%d\n%d\n" % (len(z_content), declared) + z_content


def test_a_small_well_used_block_is_kept_once_its_texts_read_back() -> None:
    data, places = two_texts()
    assert well_used(pushed_block(data, places))
    assert not well_used(pushed_block(data, places[:1]))  # one text: compressed again


@pytest.mark.parametrize(
    "damage",
    [
        "text outside the block",
        "bad control byte",
        "not zlib",
        "shorter than declared",
        "bytes after the stream",
    ],
)
def test_a_block_whose_texts_cannot_be_read_is_refused(damage: str) -> None:
    data, places = two_texts()
    header_end = data.index(b"x\x9c")
    z_content = data[header_end:]
    declared = int(data.split(b"\n")[2])
    if damage == "text outside the block":
        places[1] = (places[1][0], declared + 10)
    elif damage == "bad control byte":
        content = zlib.decompress(z_content)
        data = with_header(zlib.compress(b"x" + content[1:]), declared)
    elif damage == "not zlib":
        data = with_header(b"\x00" * len(z_content), declared)
    elif damage == "bytes after the stream":
        data = with_header(z_content + b"hidden", declared)
    else:
        data = with_header(z_content, declared + 100)
    with pytest.raises(ValueError):
        well_used(pushed_block(data, places))


@pytest.mark.parametrize("declared", ["its texts' length", "zero"])
def test_a_block_that_would_grow_past_its_declared_length_is_never_expanded(
    declared: str,
) -> None:
    """A pusher's 100 KB that would grow to 100 MB: refused after a few MB."""
    data, places = two_texts()
    content = zlib.decompress(data[data.index(b"x\x9c") :])
    bomb = zlib.compress(content + b"\0" * (100 * 1024 * 1024), 9)
    if declared == "zero":  # zlib reads a limit of 0 as "no limit"
        block = pushed_block(with_header(bomb, 0), [(0, 0), (0, 0)])
    else:
        block = pushed_block(with_header(bomb, len(content)), places)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="does not hold"):
            well_used(block)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024
