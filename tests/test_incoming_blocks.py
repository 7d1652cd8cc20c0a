"""Pushed groupcompress blocks: the well-used ones are stored as the client
packed them, texts that come one per block are still combined
(trac_breezy/smart_server/incoming_blocks.py).

With the real brz client pushing to the smart-server app (`smart_harness`,
which serves in this process, so the server's compressing can be counted),
and Breezy's own fetch to show what its stock rule does with the same blocks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from histories import make_history
from smart_harness import USERS, Server, with_credentials
from stack import Brz

from trac_breezy.smart_server.incoming_blocks import install_block_reuse, uninstall_block_reuse

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

    uninstall_block_reuse()
    try:
        Branch.open(str(packed)).controldir.sprout(
            str(tmp_path / "copy"), create_tree_if_local=False
        )
    finally:
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
