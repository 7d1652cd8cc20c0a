"""Every Bazaar format Breezy 3.3 reads, registered as `brz` registers them,
without Breezy's plugin path.

Breezy registers the formats of bzr 0.8 onwards when `breezy.bzr` is
imported, but the pre-0.8 ones (`weave`: "Bazaar-NG branch, format 6", all
in one `.bzr`; `metaweave`: "Bazaar-NG Repository format 7") only in its
built-in plugin `breezy.plugins.weave_fmt`, which only brz's command line
loads (`breezy.plugin.load_plugins`, which `brz serve` runs). A program that
never loads plugins answers such a branch with `UnknownFormatError`.

That one module is all that is needed, and it is loaded from Breezy's own
folder by its file: `import breezy.plugins.weave_fmt` would search the
plugin path first (`breezy.plugins.__path__` puts the home's
~/.config/breezy/plugins and BRZ_PLUGIN_PATH before Breezy's folder), where
whoever can write the servers' user's home could plant a `weave_fmt` that
root's tasks would then run. The module registers its formats lazily; its
other modules load from the same folder when a weave branch is opened.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

WEAVE_FMT = "breezy.plugins.weave_fmt"
_lock = threading.Lock()


def register_all() -> None:
    """Register every format Breezy reads (once; later calls cost nothing)."""
    import breezy.bzr  # noqa: F401 - the formats of bzr 0.8 onwards

    with _lock:
        if WEAVE_FMT not in sys.modules:
            _load_weave_fmt()


def _load_weave_fmt() -> None:
    import breezy.plugins  # the package the module belongs to (it imports nothing from the path)

    folder = Path(breezy.plugins.__file__).resolve().parent / "weave_fmt"
    spec = importlib.util.spec_from_file_location(
        WEAVE_FMT, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[WEAVE_FMT] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[WEAVE_FMT]
        raise
