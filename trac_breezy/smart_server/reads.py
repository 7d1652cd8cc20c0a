"""VFS reads (`get`, `readv`) that never hold a whole big file in memory.

Breezy's handlers read the file (or every range a `readv` asks for) into one
bytes object and answer it as one body, so a `get` of a 150 MB pack held
150 MB, then copies of it, per request. Protocol-3 clients (bzr 1.6 and
later, every Breezy) accept any body as a stream of parts, so these handlers
answer with a body stream read from the open file in `READ_PIECE` pieces,
which `responses.ResponseWriter` passes on as it goes (the client's read
blocks the server's write: memory stays at a few pieces).

Protocols 1 and 2 (bzr before 1.6) cannot take a stream where they expect one
body: their requests get Breezy's whole body, refused above
`WHOLE_BODY_LIMIT`. The app says which protocol the request of this thread
speaks (`whole_bodies`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from breezy import errors
from breezy.bzr.smart import request as smart_request
from breezy.bzr.smart import vfs

# Streamed bodies are read from the file in pieces of this size.
READ_PIECE = 256 * 1024
# The largest body answered whole, to clients of protocols 1 and 2.
WHOLE_BODY_LIMIT = 16 * 1024 * 1024

_request = threading.local()


@contextmanager
def whole_bodies(whole: bool) -> Iterator[None]:
    """While this thread serves a request whose client needs whole bodies."""
    _request.whole_bodies = whole
    try:
        yield
    finally:
        _request.whole_bodies = False


def _whole_bodies() -> bool:
    return getattr(_request, "whole_bodies", False)


def _check_whole_body(size: int) -> None:
    if size > WHOLE_BODY_LIMIT:
        raise errors.TransportNotPossible(
            f"a body over {WHOLE_BODY_LIMIT} bytes needs a client of protocol 3 (bzr 1.6 or later)"
        )


def _ranges(handle: IO[bytes], ranges: list[tuple[int, int]]) -> Iterator[bytes]:
    """The bytes of `ranges` in `handle`, in pieces of at most READ_PIECE."""
    for start, length in ranges:
        handle.seek(start)
        while length > 0:
            piece = handle.read(min(length, READ_PIECE))
            if not piece:  # the file shrank meanwhile
                raise errors.ShortReadvError("", start, length, 0)
            length -= len(piece)
            yield piece


def _stream(handle: IO[bytes], ranges: list[tuple[int, int]]) -> Iterator[bytes]:
    """A body stream of `ranges`; closes `handle` when done."""
    with handle:
        yield b""  # a body part even for an empty file, as Breezy's whole body was
        yield from _ranges(handle, ranges)


def _open(transport: Any, path: str) -> tuple[IO[bytes], int]:
    """The file at `path`, open, and its size; a directory fails with Breezy's ReadError."""
    handle = transport.get(path)
    handle.read(0)  # a directory's LateReadError raises here, as Breezy's get_bytes did
    return handle, os.fstat(handle.fileno()).st_size


class StreamingGet(vfs.GetRequest):
    """`get`: the file as a body stream (see the module docstring)."""

    def do(self, relpath: bytes) -> smart_request.SmartServerResponse:
        handle, size = _open(self._backing_transport, self.translate_client_path(relpath))
        if _whole_bodies():
            with handle:
                _check_whole_body(size)
                return smart_request.SuccessfulSmartServerResponse((b"ok",), handle.read())
        return smart_request.SuccessfulSmartServerResponse(
            (b"ok",), body_stream=_stream(handle, [(0, size)])
        )


class StreamingReadv(vfs.ReadvRequest):
    """`readv`: the ranges as a body stream, checked against the file's size first."""

    def do_body(self, body_bytes: bytes) -> smart_request.SmartServerResponse:
        offsets = self._deserialise_offsets(body_bytes)
        handle, size = _open(self._backing_transport, self._relpath)
        try:
            for start, length in offsets:
                if start < 0 or length < 0 or start + length > size:
                    raise errors.ShortReadvError(
                        self._relpath, start, length, max(0, min(length, size - start))
                    )
            if _whole_bodies():
                _check_whole_body(sum(length for _, length in offsets))
                with handle:
                    body = b"".join(_ranges(handle, offsets))
                return smart_request.SuccessfulSmartServerResponse((b"readv",), body)
        except BaseException:
            handle.close()
            raise
        return smart_request.SuccessfulSmartServerResponse(
            (b"readv",), body_stream=_stream(handle, offsets)
        )
