"""Refuse pushed texts out of all proportion to the bytes that carried them.

Why: a pushed groupcompress block is a zlib stream of texts, each a fulltext
or a delta of copy instructions against the block's earlier bytes. A copy
instruction of 8 bytes may copy 16 MB, so a 2 KB block can hold a text of a
gigabyte: Breezy builds it whole (`apply_delta` allocates the length the delta
declares) when it compresses the block again, when our kept-block check reads
it back (`incoming_blocks`), and later for every reader of the branch. The
zlib step was already bounded; the deltas were not.

Every groupcompress record starts with its kind (`f` or `d`) and its stored
length (a base-128 varint); a delta then starts with the length of the text it
builds. So the size of every text of a pushed block is known before any of
them is built: each must be at most `EXPANSION` times the bytes the block
arrived as, or `FREE_TEXT_BYTES` whatever it arrived as. Breezy's compressor
never makes a text larger than the block's content except by repeating it
(zlib itself stops at ~1,032 x), so honest histories stay far below the
bound (measured: bench/pushed_text_sizes.py, docs/benchmarks.md).

This wraps `groupcompress.network_block_to_records`, through which the smart
server reads every pushed block (Breezy's `NetworkRecordStream` looks it up
when a stream is read), whether the block is then kept or compressed again.
It runs only in the smart server's daemon processes (`install_text_bounds`
where the smart app is built).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Any

from breezy.bzr import groupcompress

from trac_breezy.smart_server.incoming_blocks import declared_content

# A text may be this many times the bytes its block was pushed as (zlib alone
# reaches ~1,032 x on a file of zeros; see the module docstring).
EXPANSION = 2048
# ... or this large, whatever its block (what one smart-server thread may build).
FREE_TEXT_BYTES = 32 * 1024 * 1024
# A base-128 varint of a 64-bit length is at most this long.
_VARINT_BYTES = 10

_STOCK: Callable[..., Iterator[Any]] = groupcompress.network_block_to_records


class TextOutOfProportion(ValueError):
    """A pushed text (or block header) larger than its bytes on the wire allow."""


def allowed_size(sent: int) -> int:
    """The largest text a block that arrived as `sent` bytes may hold."""
    return max(FREE_TEXT_BYTES, EXPANSION * sent)


def bounded_block_to_records(storage_kind: str, data: bytes, line_end: int) -> Iterator[Any]:
    """Breezy's `network_block_to_records`, after checking every size the block declares."""
    if storage_kind != "groupcompress-block":
        return _STOCK(storage_kind, data, line_end)
    allowed = allowed_size(len(data))
    check_header(data, allowed)
    manager = groupcompress._LazyGroupContentManager.from_bytes(data)
    check_sizes(manager, allowed, len(data))
    return manager.get_record_stream()


def check_header(data: bytes, allowed: int) -> None:
    """The block's list of texts decompresses to its declared length, at most `allowed`
    (Breezy decompresses it without a limit)."""
    try:
        # The four lines before the header, found without copying the block.
        ends = [data.index(b"\n")]
        for _ in range(3):
            ends.append(data.index(b"\n", ends[-1] + 1))
        z_length_n = int(data[ends[0] + 1 : ends[1]])
        length_n = int(data[ends[1] + 1 : ends[2]])
    except ValueError:
        raise ValueError("a pushed block's header is not a groupcompress header") from None
    if length_n > allowed:
        raise TextOutOfProportion(refusal("block header", length_n, len(data)))
    if length_n < 0 or z_length_n < 0:  # (zlib reads a limit of 0 as "no limit")
        raise ValueError("a pushed block's header declares a negative length")
    start = ends[3] + 1
    try:
        header = zlib.decompressobj().decompress(data[start : start + z_length_n], length_n + 1)
    except zlib.error as error:
        raise ValueError(f"a pushed block's header does not decompress: {error}") from None
    if len(header) != length_n:
        raise ValueError("a pushed block's header does not hold the length it declares")


def check_sizes(manager: Any, allowed: int, sent: int) -> None:
    """Every text of the block is at most `allowed` bytes: TextOutOfProportion if not.

    The block's content is decompressed to its declared length and no further
    (`declared_content`) and kept, so that Breezy does not decompress it again.
    """
    block = manager._block
    if block._content_length > allowed:
        raise TextOutOfProportion(refusal("block", block._content_length, sent))
    if block._content is None:
        block._content = declared_content(block)
    for factory in manager._factories:
        size = text_size(block._content, factory._start, factory._end)
        if size > allowed:
            raise TextOutOfProportion(refusal(f"text {factory.key!r}", size, sent))


def text_size(content: bytes, start: int, end: int) -> int:
    """The length of the text stored at content[start:end], read from its headers
    without building it (GroupCompressBlock.extract's format)."""
    if start == end == 0:
        return 0
    if not 0 <= start < end <= len(content):
        raise ValueError("a pushed text lies outside its block")
    kind = content[start : start + 1]
    stored, offset = read_varint(content, start + 1, end)
    if kind == b"f":
        return stored
    if kind != b"d":
        raise ValueError(f"a pushed text has an unknown kind {kind!r}")
    return read_varint(content, offset, end)[0]


def read_varint(content: bytes, start: int, end: int) -> tuple[int, int]:
    """A base-128 varint at content[start:] (before `end`): its value and where it ends."""
    value = shift = 0
    for position in range(start, min(end, start + _VARINT_BYTES)):
        byte = content[position]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position + 1
        shift += 7
    raise ValueError("a pushed text's length is cut short")


def refusal(what: str, size: int, sent: int) -> str:
    """The one-line error a refused push ends with."""
    return (
        f"refused: a pushed {what} would be {size:,} bytes, out of proportion to the "
        f"{sent:,} bytes it was sent as (at most {allowed_size(sent):,}); if it is a real "
        "file, run `brz pack` on the local repository and push again"
    )


def install_text_bounds() -> None:
    """Make this process check the sizes of every pushed block it reads (once)."""
    groupcompress.network_block_to_records = bounded_block_to_records


def installed() -> bool:
    return groupcompress.network_block_to_records is bounded_block_to_records
