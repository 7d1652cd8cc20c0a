"""Store a push's well-used groupcompress blocks as the client packed them.

Why: when Breezy inserts a fetched stream, it keeps an incoming
groupcompress block byte for byte only if the block holds more than one
text, at least 75 % of its bytes are texts being inserted (Breezy's
`_max_cut_fraction`) *and* it is "full": 3 MB, or 1.5 MB of mixed files.
Every other block is taken apart and each text compressed again. That size
rule is there so that small blocks get combined; but on a push of a
well-packed history the recompression was most of the server's work (a
local fetch of the 1,000-revision history: 0.70-0.74 s -> 0.45-0.47 s; the
400 MB push with the project's client plugin: 13.9 s -> 8.3 s) and bought
little on disk. Blocks that are
poorly packed do not come in whole anyway: the client itself cuts or
rebuilds a block of which it sends less than half. A block kept stays as
pushed until its pack is repacked with others: autopack combines only the
smaller packs (compressing their blocks again, `reuse_blocks=False`), and
`brz pack` leaves a repository of one pack as it is. What that costs on
disk against `brz serve`, from -0.2 % to +21.8 %: bench/pushed_blocks_disk.py,
docs/benchmarks.md ("How pushes are stored").

So this keeps Breezy's two other conditions and drops only the size rule,
after reading back every text of the block (`check_texts`): compressing it
again would have read them, and a block that cannot be read must still fail
the push. Blocks of a single text are still compressed again: keeping those
(a fresh commit's texts each arrive alone) made an incremental push of nine
fresh commits store 5 times the bytes. Breezy has no setting for this; the check
is one method of its `_LazyGroupContentManager`, wrapped here (the stock
answer is still asked first). It runs only in the smart server's daemon
processes: `install_block_reuse` is called where the smart app is built.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import breezy
from breezy.bzr import groupcompress

from trac_breezy import log

# The Breezy series whose groupcompress code this was written against and read.
BREEZY_SERIES = (3, 3)
# What the wrapped method and this module read of Breezy's block manager.
_MANAGER = groupcompress._LazyGroupContentManager
_EXPECTED = ("check_is_well_utilized", "_max_cut_fraction", "_factories", "_block")
_BLOCK = groupcompress.GroupCompressBlock
_BLOCK_EXPECTED = (
    "extract",
    "_content",
    "_content_length",
    "_z_content_chunks",
    "_compressor_name",
)

# Breezy's own check, as this module found it (it replaces it only when installed).
_STOCK_CHECK: Callable[[Any], bool] = _MANAGER.check_is_well_utilized


def well_used(manager: Any) -> bool:
    """Breezy's answer, or: more than one text and >= 75 % of the block's bytes
    in use, and every text in it can be read (`check_texts`)."""
    if _STOCK_CHECK(manager):
        return True
    factories = manager._factories
    if len(factories) < 2:
        return False
    used = sum(factory._end - factory._start for factory in factories)
    if used < manager._block._content_length * manager._max_cut_fraction:
        return False
    check_texts(manager)
    return True


def check_texts(manager: Any) -> None:
    """Read every text of a block we keep whole: ValueError if one cannot be.

    Compressing a block again reads each of its texts, so stock Breezy refuses
    a block it cannot read (a push fails with the error). Keeping one whole
    must not let a pusher store what could not be read back. The block's
    length comes from the pusher, so it is decompressed to that length and no
    further (a few bytes must not grow to gigabytes here). Blocks kept by this
    rule are under 3 MB; a local fetch of the 1,000-revision history took
    0.45-0.51 s with this check, 0.45-0.47 s without, 0.70-0.74 s compressing
    every block again.
    """
    block = manager._block
    if block._content is None:
        block._content = declared_content(block)
    for factory in manager._factories:
        if not 0 <= factory._start <= factory._end <= block._content_length:
            raise ValueError(f"a text of {factory.key!r} lies outside its block")
        block.extract(factory.key, factory._start, factory._end)


def declared_content(block: Any) -> bytes:
    """The block's content, decompressed to its declared length and no further:
    ValueError if the compressed bytes hold more or less than that (or anything
    after the end of their zlib stream), or are not zlib's."""
    if block._compressor_name != "zlib" or block._z_content_chunks is None:
        raise ValueError("a pushed block that is not zlib-compressed")
    declared = block._content_length
    if declared < 0:
        raise ValueError("a pushed block declares a negative length")
    decompressor = zlib.decompressobj()
    try:
        # One byte more than declared, to see that there is more (0 means "no limit").
        content = decompressor.decompress(b"".join(block._z_content_chunks), declared + 1)
    except zlib.error as error:
        raise ValueError(f"a pushed block does not decompress: {error}") from None
    complete = decompressor.eof and not decompressor.unused_data
    if len(content) != declared or decompressor.unconsumed_tail or not complete:
        raise ValueError(f"a pushed block does not hold the {declared} bytes it declares")
    return content


def _looks_as_expected() -> bool:
    """Whether Breezy's block manager still has what `well_used` relies on."""
    if tuple(breezy.version_info[:2]) != BREEZY_SERIES:
        return False
    has_class_parts = all(hasattr(_MANAGER, name) for name in _EXPECTED[:2])
    block = _BLOCK()
    has_block_parts = all(hasattr(block, name) for name in _BLOCK_EXPECTED)
    init_names = getattr(_MANAGER.__init__, "__code__", None)
    assigned = init_names.co_names if init_names is not None else ()
    return has_class_parts and has_block_parts and all(name in assigned for name in _EXPECTED[2:])


def install_block_reuse() -> bool:
    """Make inserts keep well-used blocks whole (once); False if Breezy is not as expected."""
    if installed():
        return True
    if not _looks_as_expected():
        log(
            "smart server: Breezy's groupcompress code is not the one this was written for; "
            "pushed blocks are compressed again as stock Breezy does "
            "(trac_breezy/smart_server/incoming_blocks.py)"
        )
        return False
    _MANAGER.check_is_well_utilized = well_used  # type: ignore[method-assign]
    return True


def installed() -> bool:
    """Whether inserts keep well-used blocks whole in this process."""
    return _MANAGER.check_is_well_utilized is well_used


def uninstall_block_reuse() -> None:
    """Undo `install_block_reuse` (for tests that measure the stock behaviour)."""
    _MANAGER.check_is_well_utilized = _STOCK_CHECK  # type: ignore[method-assign]
