"""WSGI responses of the smart server: small ones whole, large ones streamed.

Breezy's stock WSGI app builds the whole response in memory before sending
it; a branch of a big history would sit in the server's memory. Here a
response up to `RESPONSE_BUFFER` bytes goes out with a Content-Length (one
body, what most requests are), and anything larger is handed to the server
through WSGI's `write` callable as Breezy produces it (chunked transfer).

Requests refused before Breezy sees them get a short text (`plain_response`:
401, 413, ...) or, when the client should read the refusal as a smart-protocol
error, that error in the request's own protocol (`smart_failure`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from breezy.bzr.smart import protocol
from breezy.bzr.smart.request import FailedSmartServerResponse

# Responses up to this size are sent with a Content-Length; larger ones are
# streamed (chunked) as Breezy produces them.
RESPONSE_BUFFER = 1024 * 1024

StartResponse = Callable[..., Any]
OCTET_STREAM = ("Content-Type", "application/octet-stream")


class ResponseWriter:
    """Collects Breezy's output; switches to streaming once it grows large."""

    def __init__(self, start_response: StartResponse) -> None:
        self._start_response = start_response
        self._chunks: list[bytes] = []
        self._size = 0
        self._write: Callable[[bytes], Any] | None = None

    @property
    def started(self) -> bool:
        """Whether Breezy has written anything yet."""
        return self._write is not None or self._size > 0

    def write(self, data: bytes) -> None:
        """Breezy's write function for one response."""
        self._chunks.append(data)
        self._size += len(data)
        if self._size >= RESPONSE_BUFFER:
            self._flush()

    def _flush(self) -> None:
        if self._write is None:
            self._write = self._start_response("200 OK", [OCTET_STREAM])
        self._write(b"".join(self._chunks))
        self._chunks, self._size = [], 0

    def finish(self) -> list[bytes]:
        """The WSGI body: what is left once Breezy is done."""
        if self._write is not None:
            self._flush()
            return []
        body = b"".join(self._chunks)
        self._start_response("200 OK", [OCTET_STREAM, ("Content-Length", str(len(body)))])
        return [body]


def plain_response(
    start_response: StartResponse,
    status: str,
    text: str,
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    """A short text answer (errors, refusals) with its Content-Length."""
    body = text.encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *headers,
        ],
    )
    return [body]


def smart_failure(head: bytes, args: tuple[bytes, ...]) -> bytes:
    """A failed smart reply carrying `args`, in the protocol of the request `head` starts."""
    out: list[bytes] = []
    failure = FailedSmartServerResponse(args)
    if head.startswith(protocol.MESSAGE_VERSION_THREE):
        protocol.ProtocolThreeResponder(out.append).send_response(failure)
    elif head.startswith(protocol.REQUEST_VERSION_TWO):
        protocol.SmartServerRequestProtocolTwo(None, out.append)._send_response(failure)
    else:
        protocol.SmartServerRequestProtocolOne(None, out.append)._send_response(failure)
    return b"".join(out)
