"""The WSGI application: one `SmartApp` per configured tree, chosen per request.

Apache's `SetEnv` says, per request, which root, URL prefix, mode and realm
it belongs to (`setenv.SmartServerEnviron`), so one script serves any number
of trees. Building a `SmartApp` starts its chroot servers and registers its
root for the tip-change hook, so each is built once per configuration
(`app_for`) and shared by every later request and thread.

Each request is judged on its first bytes before Breezy sees it (`access`:
who may send this verb, and how large a request it may be), then served by
Breezy through the read-only transport (anonymous users, or a read-only
tree) or the writable one (authenticated users of a writable tree). With
AUTHZ_FILE, every file it touches is checked against its user's rights
(`rights`), and an anonymous request for a place anonymous may not read is
answered 401 at once, so that brz asks for a password and retries.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from breezy import urlutils
from breezy.bzr.smart import medium, protocol
from breezy.transport import Transport, chroot, get_transport, readonly

from trac_breezy import authz
from trac_breezy.setenv import READ_WRITE, MisconfiguredError, SmartServerEnviron
from trac_breezy.smart_server import access, in_flight, reads, rights, tip_changes
from trac_breezy.smart_server.confinement import ConfinedTransport, hide_root
from trac_breezy.smart_server.incoming_blocks import install_block_reuse
from trac_breezy.smart_server.old_formats import register
from trac_breezy.smart_server.overrides import ending_abandoned_inserts, install_request_overrides
from trac_breezy.smart_server.responses import (
    ResponseWriter,
    plain_response,
    smart_failure,
)
from trac_breezy.smart_server.text_sizes import install_text_bounds
from trac_breezy.smart_server.verbs import request_verb

SMART_SUFFIX = "/.bzr/smart"
# How much of a request body is read to find its verb (the verb and the
# request's arguments come first; 64 KiB is far more than they ever take).
HEAD_BYTES = 64 * 1024
# Request bodies are fed to Breezy in pieces of this size: a read waits until
# it has that much, so small pieces let a streamed push's insert start as soon
# as its first bytes arrive (256 KiB pieces cost a 1,000-revision push ~0.1 s).
READ_CHUNK = 16 * 1024


def matched_path(environ: WSGIEnvironment) -> str | None:
    """The path Apache matched, or None if it is not UTF-8.

    SCRIPT_NAME + PATH_INFO (already decoded and normalised by Apache), not
    the raw REQUEST_URI.
    """
    raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    try:
        return raw.encode("latin-1").decode("utf-8")  # PEP 3333 hands bytes as latin-1
    except UnicodeError:
        return None


def clean_segments(inner: str) -> list[str] | None:
    """The segments of `inner` ("" has none), or None if any is `.`, `..`, empty or has a NUL."""
    segments = inner.split("/") if inner else []
    if any(s in ("", ".", "..") or "\x00" in s for s in segments):
        return None
    return segments


def client_relpath(environ: WSGIEnvironment, prefix: str) -> str | None:
    """The branch path of a request, URL-escaped for Breezy, or None if invalid."""
    path = matched_path(environ)
    if path is None or not path.startswith(prefix):
        return None
    if not (path + "/").endswith(SMART_SUFFIX + "/"):
        return None
    segments = clean_segments(path[len(prefix) : len(path) - len(SMART_SUFFIX)].strip("/"))
    if segments is None:
        return None
    return "".join(urlutils.escape(s) + "/" for s in segments)


# The length of a body sent without a Content-Length: chunked, which mod_wsgi
# passes on with `WSGIChunkedRequest On` (the project's client plugin streams
# a push that way). Such a body is read to its end.
UNTIL_END = -1


def content_length(environ: WSGIEnvironment) -> int | None:
    """The request body's length, UNTIL_END without one, or None if the header is invalid."""
    raw = environ.get("CONTENT_LENGTH")
    if not raw:
        return UNTIL_END
    try:
        length = int(raw)
    except ValueError:
        return None
    return length if length >= 0 else None


def read_some(stream: Any, size: int) -> bytes:
    """Up to `size` bytes of the request body; b"" at its end, or once the client is gone."""
    try:
        return stream.read(size)
    except OSError:  # mod_wsgi's "request data read error": the client went away
        return b""


def read_exactly(stream: Any, size: int) -> bytes:
    """`size` bytes from `stream` (fewer only at its end): read() may return less."""
    parts, needed = [], size
    while needed > 0:
        part = read_some(stream, needed)
        if not part:
            break
        parts.append(part)
        needed -= len(part)
    return b"".join(parts)


def _chrooted(transport: Transport) -> Transport:
    """A chroot server's transport over `transport`: no client path leads out of it."""
    server = chroot.ChrootServer(transport)
    server.start_server()
    return get_transport(server.get_url())


def complete_reply(start_response: StartResponse, reply: bytes) -> list[bytes]:
    """A complete smart reply as the WSGI response."""
    writer = ResponseWriter(start_response)
    writer.write(reply)
    return writer.finish()


class SmartApp:
    """Breezy's smart server for one root directory (see the package docstring)."""

    def __init__(self, config: SmartServerEnviron) -> None:
        register()  # the pre-1.0 formats too, as brz serve reads them (old_formats)
        install_request_overrides()
        install_block_reuse()
        install_text_bounds()
        root = os.path.realpath(config.root)
        self.config = config
        self.read_only = config.mode != READ_WRITE
        confined = ConfinedTransport(urlutils.local_path_to_url(root))
        hide_root(confined.base, root)
        self.anonymous_transport = _chrooted(
            readonly.ReadonlyTransportDecorator("readonly+" + confined.base, _decorated=confined)
        )
        self.user_transport = self.anonymous_transport if self.read_only else _chrooted(confined)
        tip_changes.register_root(self.user_transport.base, root)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST":
            return plain_response(
                start_response,
                "405 Method Not Allowed",
                "smart requests are POSTs\n",
                [("Allow", "POST")],
            )
        relpath = client_relpath(environ, self.config.prefix)
        if relpath is None:
            return plain_response(start_response, "404 Not Found", "no such branch location\n")
        length = content_length(environ)
        if length is None:
            return plain_response(start_response, "400 Bad Request", "invalid Content-Length\n")
        body = environ["wsgi.input"]
        head = read_exactly(body, HEAD_BYTES if length == UNTIL_END else min(length, HEAD_BYTES))
        anonymous = not environ.get("REMOTE_USER")
        verb = request_verb(head)
        limit = access.body_limit(verb, anonymous)
        if length == UNTIL_END and limit is not None:
            # A capped body sent chunked is read here, one byte past its cap at
            # most, so that its size is known before Breezy sees any of it.
            rest = read_exactly(body, max(0, limit + 1 - len(head)))
            body, length = io.BytesIO(rest), len(head) + len(rest)
        refused = self._refusal(verb, anonymous, head, length, start_response)
        if refused is not None:
            return refused
        request_rights = self._rights(environ.get("REMOTE_USER") or None)
        if anonymous and request_rights and not self._may_start(request_rights, verb, relpath):
            return self._needs_user(start_response)
        transport = self.anonymous_transport if anonymous else self.user_transport
        whole_bodies = not head.startswith(protocol.MESSAGE_VERSION_THREE)
        with (
            rights.in_force(request_rights),
            tip_changes.serving(environ),
            ending_abandoned_inserts(),
            reads.whole_bodies(whole_bodies),
        ):
            remaining = UNTIL_END if length == UNTIL_END else length - len(head)
            return self._serve(transport, relpath, head, body, remaining, start_response)

    def _refusal(
        self,
        verb: bytes | None,
        anonymous: bool,
        head: bytes,
        length: int,
        start_response: StartResponse,
    ) -> list[bytes] | None:
        """The answer to a request refused before Breezy sees it, or None to serve it."""
        why = access.refusal(verb, anonymous, self.read_only)
        if why is access.Refusal.NEEDS_USER:
            return self._needs_user(start_response)
        if why is access.Refusal.READ_ONLY:
            return complete_reply(start_response, smart_failure(head, (b"ReadOnlyError",)))
        if why is access.Refusal.NOT_OFFERED and verb is not None:
            return complete_reply(start_response, smart_failure(head, (b"UnknownMethod", verb)))
        limit = access.body_limit(verb, anonymous)
        if limit is not None and length > limit:  # never UNTIL_END here: read to its cap
            return plain_response(
                start_response, "413 Request Entity Too Large", access.too_large(limit, anonymous)
            )
        return None

    def _needs_user(self, start_response: StartResponse) -> list[bytes]:
        return plain_response(
            start_response,
            "401 Unauthorized",
            "this request needs a user name and password\n",
            [("WWW-Authenticate", f'Basic realm="{self.config.realm}"')],
        )

    def _rights(self, user: str | None) -> rights.RequestRights | None:
        """The request's rights under AUTHZ_FILE (reread if it changed), None without one."""
        if not self.config.authz_file:
            return None
        return rights.RequestRights(authz.rule_file(self.config.authz_file).rules(), user)

    @staticmethod
    def _may_start(request_rights: rights.RequestRights, verb: bytes | None, relpath: str) -> bool:
        """Whether an anonymous request may start where it is sent (`hello` touches nothing)."""
        place = "/" + urlutils.unescape(relpath).rstrip("/")
        return verb == b"hello" or request_rights.may(place, rights.READ)

    def _serve(
        self,
        transport: Transport,
        relpath: str,
        head: bytes,
        body: Any,
        remaining: int,
        start_response: StartResponse,
    ) -> list[bytes]:
        """Feed the request to Breezy's protocol in chunks; answer as it writes.

        `remaining` is what is left of the body after `head`, or UNTIL_END.
        """
        writer = ResponseWriter(start_response)
        factory, unused = medium._get_protocol_factory_for_bytes(head)
        server_protocol = factory(transport.clone(relpath), writer.write, None, transport)
        server_protocol.accept_bytes(unused)
        while remaining != 0 and server_protocol.next_read_size():
            chunk = read_some(
                body, READ_CHUNK if remaining == UNTIL_END else min(remaining, READ_CHUNK)
            )
            if not chunk:
                break
            if remaining != UNTIL_END:
                remaining -= len(chunk)
            server_protocol.accept_bytes(chunk)
        if server_protocol.next_read_size() != 0 and not writer.started:
            # Incomplete (or from a newer protocol): answer in our protocol's terms.
            writer.write(b"error\x01incomplete request\n")
        return writer.finish()


_apps: dict[SmartServerEnviron, SmartApp] = {}
_apps_lock = threading.Lock()


def app_for(config: SmartServerEnviron) -> SmartApp:
    """The app for `config`, built on first use (once, even with many threads)."""
    app = _apps.get(config)
    if app is None:
        with _apps_lock:
            app = _apps.get(config)
            if app is None:
                app = _apps[config] = SmartApp(config)
    return app


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """WSGI entry point named by bzr.wsgi."""
    try:
        config = SmartServerEnviron.from_environ(environ)
    except MisconfiguredError as error:
        environ["wsgi.errors"].write(f"trac-breezy: {error}\n")
        return plain_response(
            start_response, "500 Internal Server Error", "smart server misconfigured\n"
        )
    return in_flight.counted(config.requests_dir, app_for(config), environ, start_response)
