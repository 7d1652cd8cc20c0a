"""WSGI responses of the smart server: small ones whole, the rest streamed.

Breezy's stock WSGI app builds the whole response in memory before sending
it; a branch of a big history would sit in the server's memory, and the
client could not start inserting before the server finished generating. Here
a response up to `RESPONSE_BUFFER` bytes goes out with a Content-Length (one
body, what most requests are), and anything larger is handed to the server
through WSGI's `write` callable in pieces of that size as Breezy produces
them (chunked transfer), so the first bytes of a `get_stream` leave at once.

Every smart response says that this server takes chunked request bodies
(`CHUNKED_REQUESTS`): the project's client plugin then streams a push's body
as it is produced instead of building it in memory first.

Requests refused before Breezy sees them get a short text (`plain_response`:
401, 413, ...) or, when the client should read the refusal as a smart-protocol
error, that error in the request's own protocol (`smart_failure`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from wsgiref.types import StartResponse

from breezy.bzr.smart import protocol
from breezy.bzr.smart.request import FailedSmartServerResponse

# Responses up to this size are sent with a Content-Length; larger ones are
# streamed (chunked) in pieces of this size as Breezy produces them. Small
# enough that a fetch's stream starts at once (with 1 MiB, the first bytes of
# a get_stream left ~135 ms after the request instead of ~1 ms), large enough
# that Apache is not handed tiny writes.
RESPONSE_BUFFER = 64 * 1024

OCTET_STREAM = ("Content-Type", "application/octet-stream")
# Tells the client (trac_breezy/brz_plugin) that request bodies may be sent
# chunked: Apache has `WSGIChunkedRequest On` and the app reads them to the end.
CHUNKED_REQUESTS_HEADER = "Trac-Breezy-Chunked-Requests"
CHUNKED_REQUESTS = (CHUNKED_REQUESTS_HEADER, "accepted")


class ResponseWriter:
    """Collects Breezy's output; switches to streaming once it grows large."""

    def __init__(self, start_response: StartResponse) -> None:
        self._start_response = start_response
        self._chunks: list[bytes] = []
        self._size = 0
        self._write: Callable[[bytes], object] | None = None

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
            self._write = self._start_response("200 OK", [OCTET_STREAM, CHUNKED_REQUESTS])
        self._write(b"".join(self._chunks))
        self._chunks, self._size = [], 0

    def finish(self) -> list[bytes]:
        """The WSGI body: what is left once Breezy is done."""
        if self._write is not None:
            self._flush()
            return []
        body = b"".join(self._chunks)
        length = ("Content-Length", str(len(body)))
        self._start_response("200 OK", [OCTET_STREAM, CHUNKED_REQUESTS, length])
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
