"""Pushed texts out of all proportion to what was sent are refused before they
are built (trac_breezy/smart_server/text_sizes.py); real big files still push.

The hostile block is made with Breezy's own groupcompress code: a fulltext and
a delta of 64 KiB copy instructions of it, one or two bytes each, so that a
block of about a kilobyte declares a text of 128 MiB. It is pushed to the real
smart app (behind the harness's stand-in for Apache, in this process, so that
tracemalloc sees what the server builds) with Breezy's own stream encoding.
"""

from __future__ import annotations

import os
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from smart_harness import USERS, Server, post_smart, smart_reply, with_credentials
from stack import Brz

from trac_breezy.smart_server.text_sizes import FREE_TEXT_BYTES

HOSTILE_TEXT = 128 * 1024 * 1024
BIG_FILE = 100 * 1024 * 1024
MARKER = b"bzr message 3 (bzr 1.6)\n"


def hostile_block(target: int, both_texts: bool) -> Any:
    """The block manager of a block whose second text is `target` bytes of copies.

    With `both_texts`, both texts are sent (the block is "well used" and kept
    whole after its texts are read back); else only the delta is (the block is
    taken apart and its text compressed again, as stock Breezy does).
    """
    from breezy.bzr import _groupcompress_py as gc_py
    from breezy.bzr import groupcompress

    fulltext = b"0123456789abcdef" * 4096
    first = b"f" + gc_py.encode_base128_int(len(fulltext)) + fulltext
    copy = gc_py.encode_copy_instruction(len(first) - len(fulltext), 0x10000)
    delta = gc_py.encode_base128_int(target) + copy * (target // 0x10000)
    second = b"d" + gc_py.encode_base128_int(len(delta)) + delta
    block = groupcompress.GroupCompressBlock()
    block.set_chunked_content([first, second], len(first) + len(second))
    manager = groupcompress._LazyGroupContentManager(
        groupcompress.GroupCompressBlock.from_bytes(block.to_bytes())
    )
    if both_texts:
        manager.add_factory((b"file-id", b"rev-1"), (), 0, len(first))
    manager.add_factory(
        (b"file-id", b"rev-2"), ((b"file-id", b"rev-1"),), len(first), len(first) + len(second)
    )
    # Sent as it is: Breezy's client would rebuild a poorly used block before sending it.
    manager._check_rebuild_block = lambda: None
    return manager


def insert_stream_request(manager: Any) -> bytes:
    """Repository.insert_stream_1.19 with a stream of one texts block, encoded as
    Breezy's client encodes it (`_stream_to_byte_stream`)."""
    from breezy.bzr.smart.repository import _stream_to_byte_stream
    from breezy.controldir import format_registry
    from fastbencode import bencode

    src_format = format_registry.make_controldir("2a").repository_format
    headers = bencode({b"Software version": b"3.3.23"})
    structure = bencode([b"Repository.insert_stream_1.19", b"", b""])
    message = MARKER + struct.pack("!L", len(headers)) + headers
    message += b"s" + struct.pack("!L", len(structure)) + structure
    for part in _stream_to_byte_stream([("texts", manager.get_record_stream())], src_format):
        message += b"b" + struct.pack("!L", len(part)) + part
    return message + b"e"


@pytest.mark.parametrize("both_texts", [True, False], ids=["kept whole", "compressed again"])
def test_a_small_block_declaring_a_huge_text_is_refused_unbuilt(
    server: Server, tmp_path: Path, both_texts: bool
) -> None:
    Brz(tmp_path / "home")("init", str(server.root / "trunk"))
    block = hostile_block(HOSTILE_TEXT, both_texts)
    assert len(block._wire_bytes()) < 2048 and HOSTILE_TEXT > 2 * FREE_TEXT_BYTES
    message = insert_stream_request(block)
    tracemalloc.start()
    try:
        status, reply = post_smart(server, "trunk/", message, "alice")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 200
    kind, args, _ = smart_reply(reply)
    assert kind == b"E" and b"out of proportion" in b" ".join(args), args
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"
    Brz(tmp_path / "home")("check", str(server.root / "trunk"))


@pytest.mark.parametrize("declared", [-1, 1 << 40], ids=["negative", "a terabyte"])
def test_a_block_header_that_would_grow_past_its_length_is_never_expanded(
    server: Server, tmp_path: Path, declared: int
) -> None:
    """The list of a block's texts is zlib too: 100 KB of it would be 100 MB."""
    import zlib

    Brz(tmp_path / "home")("init", str(server.root / "trunk"))
    block = hostile_block(2 * 0x10000, True)
    wire = block._wire_bytes()
    _, _, _, block_length, rest = wire.split(b"\n", 4)
    bomb = zlib.compress(b"\n" * (100 * 1024 * 1024), 9)
    block_bytes = rest[len(rest) - int(block_length) :]
    data = b"groupcompress-block\n%d\n%d\n%s\n" % (len(bomb), declared, block_length)
    block.get_record_stream = lambda: iter([Wire(data + bomb + block_bytes)])
    message = insert_stream_request(block)
    tracemalloc.start()
    try:
        status, reply = post_smart(server, "trunk/", message, "alice")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    kind, args, _ = smart_reply(reply)
    assert status == 200 and kind == b"E", args
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


class Wire:
    """A record whose bytes on the wire are given (as a hostile client sends them)."""

    storage_kind = "groupcompress-block"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_bytes_as(self, kind: str) -> bytes:
        return self.data


@pytest.mark.parametrize("kind", ["incompressible", "zeros"])
def test_a_real_100_mb_file_still_pushes(server: Server, tmp_path: Path, kind: str) -> None:
    brz = Brz(tmp_path / "home")
    with_credentials(brz, server, "alice", USERS["alice"])
    local = tmp_path / "local"
    brz("init", str(local))
    with (local / "big.bin").open("wb") as big:
        if kind == "zeros":  # the most compressible file there is: zlib's ~1,030 x
            big.truncate(BIG_FILE)
        else:
            for _ in range(BIG_FILE // (1 << 20)):
                big.write(os.urandom(1 << 20))
    brz("add", "big.bin", cwd=local)  # named: `add` alone skips files over 20 MB
    brz("commit", "-m", "big", cwd=local)
    with (local / "big.bin").open("ab") as big:  # a second revision: a delta of the first
        big.write(b"changed")
    brz("commit", "-m", "changed", cwd=local)
    brz("pack", str(local))
    brz("push", server.url("trunk"), "-d", str(local))
    brz("check", str(server.root / "trunk"))
    assert brz.revno(server.root / "trunk") == 2
