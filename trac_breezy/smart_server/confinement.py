"""Keep the smart server inside its root, and its error texts free of server paths.

Breezy's chroot stops `..` in URLs and smart-protocol paths, but the file
system follows symlinks: `ConfinedTransport` resolves each path before use, so
a symlink inside the root cannot lead a client outside it. Breezy's error
translation puts local paths and chroot URLs into the errors it sends to
clients; `scrub_paths` removes every registered root from them.
"""

from __future__ import annotations

import os
from typing import Any

from breezy.bzr.smart import request as smart_request
from breezy.transport import NoSuchFile, local


class ConfinedTransport(local.LocalTransport):
    """A local transport that refuses paths whose real location is outside `root`."""

    def __init__(self, base: str, root: str | None = None) -> None:
        super().__init__(base)
        self._root = root or os.path.realpath(self._local_base)

    def clone(self, offset: str | None = None) -> ConfinedTransport:
        return ConfinedTransport(self.base if offset is None else self.abspath(offset), self._root)

    def _abspath(self, relative_reference: str) -> str:
        path = super()._abspath(relative_reference)
        real = os.path.realpath(path)
        if real != self._root and not real.startswith(self._root + os.sep):
            raise NoSuchFile(relative_reference)
        return path


# (URL, local path) of every root served, as bytes: removed from error texts.
_scrub_roots: list[tuple[bytes, bytes]] = []
_original_translate_error = smart_request._translate_error


def hide_root(url: str, path: str) -> None:
    """Keep `url` (a transport base) and `path` (the local root) out of error texts."""
    _scrub_roots.append((url.rstrip("/").encode(), path.encode()))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub(value.encode("utf-8")).decode("utf-8")
    if isinstance(value, bytes):
        for url, path in _scrub_roots:
            value = value.replace(url, b"").replace(path, b"")
    return value


def scrub_paths(err: BaseException) -> tuple:
    """Breezy's error translation, with the server's root paths removed."""
    return tuple(_scrub(item) for item in _original_translate_error(err))
