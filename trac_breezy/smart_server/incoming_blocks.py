"""Store a push's well-used groupcompress blocks as the client packed them.

Why: when Breezy inserts a fetched stream, it keeps an incoming
groupcompress block byte for byte only if the block holds more than one
text, at least 75 % of its bytes are texts being inserted (Breezy's
`_max_cut_fraction`) *and* it is "full": 3 MB, or 1.5 MB of mixed files.
Every other block is taken apart and each text compressed again. That size
rule is there so that small blocks get combined; but on a push of a
well-packed history the recompression was most of the server's work, and
it bought nothing on disk (measured in docs/benchmarks.md, "Storing pushed
blocks": 1,000 revisions, insert 0.74 s -> 0.47 s, packs 719,969 -> 718,930
bytes). Blocks that are poorly packed still do not come in whole: the client
itself cuts or rebuilds a block of which it sends less than half, and the
server's next autopack (at every tenth pack) compresses every block again
(`reuse_blocks=False`), so nothing stays as pushed for long anyway.

So this keeps Breezy's two other conditions and drops only the size rule.
Blocks of a single text are still compressed again: keeping those (a fresh
commit's texts each arrive alone) made an incremental push of nine fresh
commits store 5 times the bytes. Breezy has no setting for this; the check
is one method of its `_LazyGroupContentManager`, wrapped here (the stock
answer is still asked first). It runs only in the smart server's daemon
processes: `install_block_reuse` is called where the smart app is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from breezy.bzr import groupcompress

from trac_breezy import log

# What the wrapped method and this module read of Breezy's block manager.
_MANAGER = groupcompress._LazyGroupContentManager
_EXPECTED = ("check_is_well_utilized", "_max_cut_fraction", "_factories", "_block")

_stock_check: list[Callable[[Any], bool]] = []


def well_used(manager: Any) -> bool:
    """Breezy's answer, or: more than one text and >= 75 % of the block's bytes in use."""
    if _stock_check[0](manager):
        return True
    factories = manager._factories
    if len(factories) < 2:
        return False
    used = sum(factory._end - factory._start for factory in factories)
    return used >= manager._block._content_length * manager._max_cut_fraction


def _looks_as_expected() -> bool:
    """Whether Breezy's block manager still has what `well_used` relies on."""
    has_class_parts = all(hasattr(_MANAGER, name) for name in _EXPECTED[:2])
    init_names = getattr(_MANAGER.__init__, "__code__", None)
    assigned = init_names.co_names if init_names is not None else ()
    return has_class_parts and all(name in assigned for name in _EXPECTED[2:])


def install_block_reuse() -> bool:
    """Make inserts keep well-used blocks whole (once); False if Breezy is not as expected."""
    if _stock_check:
        return True
    if not _looks_as_expected():
        log(
            "smart server: Breezy's groupcompress block manager changed; pushed blocks are "
            "compressed again as stock Breezy does (trac_breezy/smart_server/incoming_blocks.py)"
        )
        return False
    _stock_check.append(_MANAGER.check_is_well_utilized)
    _MANAGER.check_is_well_utilized = well_used
    return True


def uninstall_block_reuse() -> None:
    """Undo `install_block_reuse` (for tests that measure the stock behaviour)."""
    if _stock_check:
        _MANAGER.check_is_well_utilized = _stock_check.pop()
