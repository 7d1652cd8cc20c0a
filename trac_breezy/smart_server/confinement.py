"""Keep the smart server inside its root, and its failed replies free of server paths.

Breezy's chroot stops `..` in URLs and smart-protocol paths, but the file
system follows symlinks: `ConfinedTransport` resolves each path before use, so
a symlink inside the root cannot lead a client outside it.

It is also where the access rules are checked (`rights`): every operation
reads (`_abspath`), and the operations that change the tree write.

Breezy puts local paths (`/srv/bzr/...`), their URLs and the chroot server's
URL (`chroot-<heap address>:///...`) into the errors it sends: through its
error translation (`scrub_paths` replaces it) and in failed replies some
handlers build themselves (a lock's path in `LockFailed`, a `nobranch`
detail; `ScrubbingRequestHandler` catches those). Both remove every served
root and every chroot URL, so a path reads as the client's path from the top
of the tree (`/trunk/.bzr/...`).
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from typing import Any

from breezy.bzr.smart import request as smart_request
from breezy.transport import NoSuchFile, local

from trac_breezy.smart_server import rights


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
        rights.check(real, self._root, rights.READ)
        return path

    def _real(self, relative_reference: str) -> str:
        return os.path.realpath(local.LocalTransport._abspath(self, relative_reference))

    def _check_write(self, relative_reference: str, moves: bool = False) -> None:
        real = self._real(relative_reference)
        rights.check(real, self._root, rights.WRITE)
        if moves:
            rights.check_move(real, self._root)

    def has(self, relpath: str) -> bool:
        """A place its user may not read is answered as a missing one: no (not an error,
        which told a guessed name under a deny rule from one that is nowhere)."""
        try:
            return super().has(relpath)
        except NoSuchFile:
            return False

    def list_dir(self, relpath: str) -> list[str]:
        # iter_files_recursive lists through here too.
        names = super().list_dir(relpath)
        return rights.visible(names, self._real(relpath), self._root)


def _writing(name: str, changed: tuple[int, ...], moves: bool = False) -> Callable[..., Any]:
    """LocalTransport's `name`, checking write on its path arguments numbered `changed`
    (and, for a rename, that no rules name paths below them: `rights.check_move`)."""
    original = getattr(local.LocalTransport, name)
    signature = inspect.signature(original)
    names = list(signature.parameters)[1:]

    def method(self: ConfinedTransport, *args: Any, **kwargs: Any) -> Any:
        given = signature.bind(self, *args, **kwargs).arguments
        for index in changed:
            self._check_write(given[names[index]], moves)
        return original(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = original.__doc__
    return method


for _name in rights.WRITES_FIRST:
    setattr(ConfinedTransport, _name, _writing(_name, (0,)))
for _name in rights.WRITES_BOTH:
    setattr(ConfinedTransport, _name, _writing(_name, (0, 1), moves=True))
for _name in rights.WRITES_SECOND:
    setattr(ConfinedTransport, _name, _writing(_name, (1,)))


# (URL, local path) of every root served, as bytes: removed from error texts.
_scrub_roots: list[tuple[bytes, bytes]] = []
# A chroot server's URL, e.g. chroot-140541907266256:/// (the heap address of
# the server object): made neutral, "/" of the tree the client sees.
_CHROOT_URL = re.compile(rb"(?:readonly\+)?chroot-\d+://")
_original_translate_error = smart_request._translate_error


def hide_root(url: str, path: str) -> None:
    """Keep `url` (a transport base) and `path` (the local root) out of error texts."""
    _scrub_roots.append((url.rstrip("/").encode(), path.encode()))


def _scrub(value: Any) -> Any:
    """`value` (bytes, str, or a tuple or list of them) without server paths."""
    if isinstance(value, str):
        return _scrub(value.encode("utf-8")).decode("utf-8", "replace")
    if isinstance(value, bytes):
        value = _CHROOT_URL.sub(b"", value)
        for url, path in _scrub_roots:
            value = value.replace(b"readonly+" + url, b"").replace(url, b"").replace(path, b"")
        return value
    if isinstance(value, tuple | list):
        return type(value)(_scrub(item) for item in value)
    return value


def scrub_paths(err: BaseException) -> tuple[object, ...]:
    """Breezy's error translation, with the server's root paths removed."""
    return _scrub(tuple(_original_translate_error(err)))


class ScrubbingRequestHandler(smart_request.SmartServerRequestHandler):
    """Breezy's request dispatcher, whose failed replies never show server paths."""

    def _run_handler_code(self, callable: Any, args: Any, kwargs: Any) -> None:
        super()._run_handler_code(callable, args, kwargs)
        response = self.response
        if response is not None and not response.is_successful():
            response.args = _scrub(response.args)
