"""Send large bzr+http(s) smart requests to trac-breezy servers as they are produced.

Why: Breezy 3.3's HTTP client builds every smart request body in memory
(`SmartClientHTTPMediumRequest._accept_bytes` does `self._buffer += bytes`
once per part) and POSTs it only when it is complete. A push copies its body
over and over (a 384 MB push copies ~154 GiB) and sends nothing until the
whole body is built.

What this plugin changes (for bzr+http:// and bzr+https:// only):

* Parts are collected in a list and joined once. A request that stays under
  16 KiB (hello, BzrDir.open..., locks: nearly all of them) is POSTed whole,
  with a Content-Length, through Breezy's own HTTP code, as stock Breezy does.
* A request that grows past 16 KiB (a push's `Repository.insert_stream...`)
  is sent as an HTTP/1.1 chunked POST (`Transfer-Encoding: chunked`): every
  ~16 KiB of parts (or larger part) as soon as it is produced,
  with blocking writes, so memory stays bounded, the server inserts while brz
  still builds the rest, and the network sets the pace.

It streams only where that is safe. A chunked body cannot be replayed, so:

* only to a server that said it accepts chunked bodies: the last answer on
  that URL carried `Trac-Breezy-Chunked-Requests: accepted`. Other servers
  (Breezy's stock WSGI app, other hosts) always get Content-Length requests;
* only once Breezy holds credentials that the server accepted (a request
  that carried them succeeded), and it sends them up front, since there is no
  retry after a 401. Anonymous requests are never streamed (they are reads);
* never through an HTTP proxy (one may not accept chunked bodies).

And one fix of Breezy 3.3's bzr+http client: it sends the paths of file
operations (VFS requests) as `str` (`RemoteHTTPTransport._remote_path`),
where every other transport sends bytes. A request with a body then fails
before it is sent (`TypeError: args must be byte strings`), and any error
answer to one without a body crashes the client instead of being handled
(`'str' object has no attribute 'decode'`). Committing in a lightweight
checkout of a bzr+http:// branch writes the new pack that way: stock brz
fails with "mismatched lock context and write group"; with this plugin it
commits. The paths are sent as the same text, UTF-8 encoded, as bzr:// does.

A streamed request uses a new connection of Breezy's own connection classes,
closed after the answer: no stale keep-alive connection can swallow the body,
and for https the same `ssl.ca_certs` / `ssl.cert_reqs` settings apply. If a
streamed request fails (an answer other than 200, a broken connection) the
error is raised, never retried: the body is gone; run the command again.

Install: put this file in the `plugins` directory of Breezy's configuration
directory (`brz version` names it; usually ~/.config/breezy), or load it for one
command with `BRZ_PLUGINS_AT=trac_breezy_streaming@/path/to/trac_breezy_streaming.py`.
`BRZ_DISABLE_PLUGINS=trac_breezy_streaming` turns it off. Needs Python 3.9+ and
Breezy 3.3.x; on any other Breezy, or if the class it replaces does not look
as expected, it does nothing but say why in brz.log (`brz version` shows where).
"""

from __future__ import annotations

import contextlib
import http.client
import sys
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

import breezy
from breezy import errors
from breezy.bzr.smart import medium
from breezy.trace import mutter
from breezy.transport import Transport

version_info = (1, 1, 0, "final", 0)

# The response header by which a trac-breezy server says it accepts chunked bodies.
CHUNKED_REQUESTS_HEADER = "Trac-Breezy-Chunked-Requests"
# Requests up to this size go whole; larger ones stream from this size on, in
# chunks of about CHUNK_BYTES (or each part as it comes, if larger), so that
# the server inserts while brz still builds the rest: a 1,000-revision push
# took 0.91 s with 1 MiB chunks, 0.79 s with 16 KiB ones (`brz serve`: 0.70 s).
STREAM_FROM_BYTES = 16 * 1024
CHUNK_BYTES = 16 * 1024
# The Breezy series whose HTTP client this plugin knows.
BREEZY_SERIES = (3, 3)
HTTP_MODULE = "breezy.transport.http.urllib"
# How much of a refusal's body goes into the error message.
REFUSAL_EXCERPT = 300
# How long to wait for the server's answer after it broke off a streamed request.
EARLY_ANSWER_SECONDS = 5.0

# The label of this plugin's transport hook (`brz hooks` shows it).
HOOK_LABEL = "trac_breezy_streaming: stream large bzr+http(s) requests"

# Smart media (one per base URL) that may stream: see `note_response`.
_streaming_media: weakref.WeakSet[Any] = weakref.WeakSet()
# The stock `SmartClientHTTPMedium.get_request`, while this plugin replaces it.
_replaced: dict[str, Callable[..., Any]] = {}
# What the hook's one call of `install` returned (it tries once per process).
_attempts: list[bool] = []


def _http() -> Any:
    """Breezy's HTTP client module (imported only once a connection needs it)."""
    from breezy.transport.http import urllib as http_module

    return http_module


def _remote_http_transport() -> Any:
    """The transport class of bzr+http(s):// URLs."""
    from breezy.transport.remote import RemoteHTTPTransport

    return RemoteHTTPTransport


def _handle_response(path: str, code: int, getheader: Any, data: Any) -> Any:
    from breezy.transport.http.response import handle_response

    return handle_response(path, code, getheader, data)


def _stock(cls: type, name: str) -> bool:
    """Whether `cls.name` is still the method `cls` itself defines."""
    method = getattr(cls, name, None)
    return getattr(method, "__qualname__", None) == f"{cls.__name__}.{name}"


def unexpected_breezy() -> str | None:
    """Why this Breezy is not one the plugin can patch, or None if it is."""
    if tuple(breezy.version_info[:2]) != BREEZY_SERIES:
        return f"written for Breezy {BREEZY_SERIES}, this is {breezy.version_info[:3]}"
    try:
        http_module = _http()
    except ImportError as error:
        return f"cannot import {HTTP_MODULE}: {error}"
    expected = [
        (http_module.SmartClientHTTPMediumRequest, ("__init__", "_accept_bytes")),
        (http_module.SmartClientHTTPMediumRequest, ("_finished_writing", "_read_bytes")),
        (http_module.SmartClientHTTPMedium, ("get_request", "send_http_smart_request")),
        (http_module.HttpTransport, ("request", "_remote_path", "_post")),
        (_remote_http_transport(), ("_remote_path",)),
    ]
    changed = [f"{c.__name__}.{n}" for c, names in expected for n in names if not _stock(c, n)]
    if changed:
        return f"{HTTP_MODULE} is not as expected (changed: {', '.join(changed)})"
    for name in ("Request", "HTTPAuthHandler", "ConnectionHandler"):
        if not hasattr(http_module, name):
            return f"{HTTP_MODULE} has no {name}"
    return None


def install() -> bool:
    """Make bzr+http(s) smart media use `StreamingRequest`; False if Breezy is not as expected."""
    if _replaced:
        return True
    problem = unexpected_breezy()
    if problem is not None:
        mutter("trac_breezy_streaming: not active: %s", problem)
        return False
    medium_class = _http().SmartClientHTTPMedium
    _replaced["get_request"] = medium_class.get_request
    medium_class.get_request = _get_request
    _replaced["_remote_path"] = _remote_http_transport()._remote_path
    _remote_http_transport()._remote_path = _remote_path_bytes
    mutter("trac_breezy_streaming: large smart requests stream where the server accepts it")
    return True


def uninstall() -> None:
    """Undo `install` and remove the hook that calls it (for tests)."""
    if _replaced:
        _http().SmartClientHTTPMedium.get_request = _replaced.pop("get_request")
        _remote_http_transport()._remote_path = _replaced.pop("_remote_path")
    with contextlib.suppress(KeyError):  # already removed
        Transport.hooks.uninstall_named_hook("post_connect", HOOK_LABEL)


def _get_request(self: Any) -> StreamingRequest:
    """`SmartClientHTTPMedium.get_request`, replaced."""
    return StreamingRequest(self)


def _remote_path_bytes(self: Any, relpath: str) -> bytes:
    """`RemoteHTTPTransport._remote_path`, replaced: the same path, as bytes."""
    path = _replaced["_remote_path"](self, relpath)
    return path.encode("utf-8") if isinstance(path, str) else path


def _install_on_connect(connected: Any) -> None:
    """Transport `post_connect` hook: install once Breezy's HTTP client is in use.

    Importing that client costs every brz command ~30 ms; commands that never
    open an HTTP connection need not pay it.
    """
    if HTTP_MODULE in sys.modules and not _attempts:
        _attempts.append(install())


# (Not `hooks.install_lazy_named_hook`: Breezy 3.3's TransportHooks ignore lazy hooks.)
Transport.hooks.install_named_hook("post_connect", _install_on_connect, HOOK_LABEL)


def _transport(client_medium: Any) -> Any:
    """The HTTP transport behind a smart medium (Breezy keeps a weak reference)."""
    transport = client_medium._http_transport_ref()
    if transport is None:
        raise errors.SmartProtocolError("the HTTP transport of this smart medium is gone")
    return transport


def _smart_path(transport: Any) -> str:
    return transport._remote_path(".bzr/smart")


def credentials_established(transport: Any) -> bool:
    """Whether Breezy now sends credentials with every request to `transport`.

    After a successful answer, that means the server accepted them: Breezy's
    auth handlers add the header to each request once a scheme is known.
    """
    credentials = transport._get_credentials()
    if not credentials:
        return False
    auth = credentials[0]
    for handler in transport._opener._opener.handlers:
        reusable = getattr(handler, "auth_params_reusable", None)
        if isinstance(handler, _http().HTTPAuthHandler) and reusable and reusable(auth):
            return True
    return _token_header(transport, _smart_path(transport)) is not None


def _token_header(transport: Any, path: str) -> str | None:
    """A bearer token Breezy sends for `path` (from authentication.conf), if any."""
    token_header = getattr(transport, "_token_auth_header", None)  # not in every 3.3.x
    return token_header(path) if token_header is not None else None


def note_response(client_medium: Any, transport: Any, getheader: Callable[..., Any]) -> None:
    """Remember whether `client_medium` may stream, from a successful answer's headers."""
    accepted = (getheader(CHUNKED_REQUESTS_HEADER, None) or "").strip().lower() == "accepted"
    if accepted and credentials_established(transport):
        _streaming_media.add(client_medium)
    else:
        _streaming_media.discard(client_medium)


def post_whole(client_medium: Any, body: bytes) -> Any:
    """POST `body` with a Content-Length, as stock Breezy does; the answer's body file.

    The same steps as `SmartClientHTTPMedium.send_http_smart_request` and
    `HttpTransport._post`, keeping the answer's headers for `note_response`.
    """
    transport = _transport(client_medium)
    path = _smart_path(transport)
    try:
        response = transport.request(
            "POST", path, body=body, headers={"Content-Type": "application/octet-stream"}
        )
        data = _handle_response(path, response.status, response.getheader, response)
        if response.status != 200:
            raise errors.UnexpectedHttpStatus(path, response.status)
    except (errors.InvalidHttpResponse, errors.ConnectionReset) as error:
        raise errors.SmartProtocolError(str(error)) from error
    note_response(client_medium, transport, response.getheader)
    return data


def prepared_request(transport: Any) -> Any:
    """A chunked POST to `transport`'s .bzr/smart, through Breezy's request processors.

    They add Breezy's usual headers, the credentials (preemptively, once a
    scheme is known), any proxy, and a new connection (none is set yet).
    """
    http_module = _http()
    path = _smart_path(transport)
    headers = {
        "Content-Type": "application/octet-stream",
        "Transfer-Encoding": "chunked",
        "Connection": "close",
    }
    token = _token_header(transport, path)
    if token is not None:
        headers["Authorization"] = token
    request = http_module.Request("POST", path, None, headers)
    request.auth, request.proxy_auth = transport._get_credentials() or ({}, {})
    protocol = request.type
    opener = transport._opener._opener
    for processor in opener.process_request.get(protocol, []):
        request = getattr(processor, protocol + "_request")(request)
    return request


def send_headers(request: Any) -> None:
    """Connect and send the request line and headers of `request` (no body yet)."""
    headers = dict(request.header_items())
    headers.update(request.unredirected_hdrs)
    headers = {name.title(): value for name, value in headers.items()}
    names = {name.lower() for name in headers}
    connection = request.connection
    connection.putrequest(
        request.get_method(),
        request.selector,
        skip_host="host" in names,
        skip_accept_encoding="accept-encoding" in names,
    )
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()


def open_chunked_post(client_medium: Any) -> ChunkedPost | None:
    """A chunked POST with its headers sent, or None where streaming is not safe."""
    if client_medium not in _streaming_media:
        return None
    transport = _transport(client_medium)
    try:
        request = prepared_request(transport)
    except errors.BzrError as error:
        mutter("trac_breezy_streaming: sending whole: %s", error)
        return None
    path = request.get_full_url()
    if request.proxied_host is not None:
        mutter("trac_breezy_streaming: sending whole: %s goes through a proxy", path)
        return None
    if not request.has_header("Authorization"):
        mutter("trac_breezy_streaming: sending whole: no credentials for %s", path)
        return None
    try:
        send_headers(request)
    except (OSError, http.client.HTTPException) as error:
        request.connection.close()
        mutter("trac_breezy_streaming: sending whole: cannot stream to %s: %s", path, error)
        return None
    mutter("trac_breezy_streaming: streaming a smart request to %s", path)
    return ChunkedPost(client_medium, request.connection, path)


class ChunkedPost:
    """One POST whose body goes out in chunks as it is produced, on its own connection."""

    def __init__(self, client_medium: Any, connection: Any, path: str) -> None:
        self._medium = client_medium
        self._connection = connection
        self._path = path

    def write(self, parts: list[bytes]) -> None:
        """Send `parts` as one chunk (blocking until the socket takes it)."""
        size = sum(len(part) for part in parts)
        if size:
            self._send(b"".join([b"%x\r\n" % size, *parts, b"\r\n"]))

    def finish(self) -> Any:
        """End the body; the answer's body file (raises unless the answer is 200)."""
        self._send(b"0\r\n\r\n")
        try:
            response = self._connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            self._broken(error)
        if response.status != 200:
            self._refused(response)
        note_response(self._medium, _transport(self._medium), response.getheader)
        return _handle_response(self._path, 200, response.getheader, response)

    def close(self) -> None:
        self._connection.close()

    def _send(self, data: bytes) -> None:
        try:
            self._connection.send(data)
        except (OSError, http.client.HTTPException) as error:
            self._broken(error)

    def _broken(self, error: Exception) -> NoReturn:
        """Raise the server's answer if it sent one before breaking off, else `error`."""
        try:
            self._connection.sock.settimeout(EARLY_ANSWER_SECONDS)
            response = self._connection.getresponse()
        except (OSError, http.client.HTTPException, AttributeError):
            self.close()
            raise errors.ConnectionReset(
                f"while streaming a smart request to {self._path} (it cannot be resent)", error
            ) from error
        self._refused(response)

    def _refused(self, response: Any) -> NoReturn:
        try:
            text = response.read(REFUSAL_EXCERPT).decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException):
            text = ""
        self.close()
        _streaming_media.discard(self._medium)
        raise errors.UnexpectedHttpStatus(
            self._path,
            response.status,
            f"{response.reason} to a streamed (chunked) smart request: {text}",
        )


class StreamingRequest(medium.SmartClientMediumRequest):
    """A smart request over HTTP: sent whole when small, streamed once large (see the module)."""

    def __init__(self, client_medium: Any) -> None:
        super().__init__(client_medium)
        self._parts: list[bytes] = []
        self._pending = 0
        self._post: ChunkedPost | None = None
        self._may_stream = True
        self._response_body: Any = None

    def _accept_bytes(self, data: bytes) -> None:
        self._parts.append(data)
        self._pending += len(data)
        limit = STREAM_FROM_BYTES if self._post is None else CHUNK_BYTES
        if self._pending >= limit and self._may_stream:
            self._send_pending()

    def _send_pending(self) -> None:
        if self._post is None:
            self._post = open_chunked_post(self._medium)
            if self._post is None:
                self._may_stream = False
                return
        self._post.write(self._take_parts())

    def _take_parts(self) -> list[bytes]:
        parts, self._parts, self._pending = self._parts, [], 0
        return parts

    def _finished_writing(self) -> None:
        if self._post is None:
            self._response_body = post_whole(self._medium, b"".join(self._take_parts()))
        else:
            self._post.write(self._take_parts())
            self._response_body = self._post.finish()

    def _read_bytes(self, count: int) -> bytes:
        return self._response_body.read(count)

    def _read_line(self) -> bytes:
        line, excess = medium._get_line(self._response_body.read)
        if excess != b"":
            raise AssertionError(f"_get_line returned excess bytes ({excess!r})")
        return line

    def _finished_reading(self) -> None:
        if self._post is not None:
            self._post.close()
