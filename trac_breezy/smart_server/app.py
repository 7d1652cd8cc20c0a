"""The WSGI application: one `SmartApp` per configured tree, chosen per request.

Apache's `SetEnv` says, per request, which root, URL prefix, mode and realm
it belongs to (`setenv.SmartServerEnviron`), so one script serves any number
of trees. Building a `SmartApp` starts a chroot server and registers its root
for the tip-change hook, so each is built once per configuration (`app_for`)
and shared by every later request and thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from breezy import urlutils
from breezy.bzr.smart import medium
from breezy.transport import chroot, get_transport, readonly

from trac_breezy.setenv import READ_WRITE, MisconfiguredError, SmartServerEnviron
from trac_breezy.smart_server import tip_changes
from trac_breezy.smart_server.confinement import ConfinedTransport, hide_root
from trac_breezy.smart_server.overrides import install_request_overrides
from trac_breezy.smart_server.responses import ResponseWriter, StartResponse, plain_response
from trac_breezy.smart_server.verbs import is_read, request_verb

SMART_SUFFIX = "/.bzr/smart"
# How much of a request body is read to find its verb (the verb and the
# request's arguments come first; 64 KiB is far more than they ever take).
HEAD_BYTES = 64 * 1024
# Request bodies are fed to Breezy in pieces of this size.
READ_CHUNK = 256 * 1024


def client_relpath(environ: dict[str, Any], prefix: str) -> str | None:
    """The branch path of a request, URL-escaped for Breezy, or None if invalid.

    Taken from the path Apache matched (SCRIPT_NAME + PATH_INFO, already decoded
    and normalised), not the raw REQUEST_URI; any `.`/`..`/empty segment left
    in it is refused.
    """
    raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    try:
        path = raw.encode("latin-1").decode("utf-8")  # PEP 3333 hands bytes as latin-1
    except UnicodeError:
        return None
    if not path.startswith(prefix) or not (path + "/").endswith(SMART_SUFFIX + "/"):
        return None
    inner = path[len(prefix) : len(path) - len(SMART_SUFFIX)].strip("/")
    segments = inner.split("/") if inner else []
    if any(s in ("", ".", "..") or "\x00" in s for s in segments):
        return None
    return "".join(urlutils.escape(s) + "/" for s in segments)


def read_exactly(stream: Any, size: int) -> bytes:
    """`size` bytes from `stream` (fewer only at its end): read() may return less."""
    parts, needed = [], size
    while needed > 0:
        part = stream.read(needed)
        if not part:
            break
        parts.append(part)
        needed -= len(part)
    return b"".join(parts)


def _backing_transport(root: str, mode: str) -> Any:
    """The confined transport of `root`, read-only unless `mode` is read-write."""
    confined = ConfinedTransport(urlutils.local_path_to_url(root))
    hide_root(confined.base, root)
    if mode == READ_WRITE:
        return confined
    return readonly.ReadonlyTransportDecorator("readonly+" + confined.base, _decorated=confined)


class SmartApp:
    """Breezy's smart server for one root directory (see the package docstring)."""

    def __init__(self, config: SmartServerEnviron) -> None:
        install_request_overrides()
        root = os.path.realpath(config.root)
        self.config = config
        self.chroot_server = chroot.ChrootServer(_backing_transport(root, config.mode))
        self.chroot_server.start_server()
        self.backing_transport = get_transport(self.chroot_server.get_url())
        tip_changes.register_root(self.chroot_server.get_url(), root)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
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
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"]
        head = read_exactly(body, min(remaining, HEAD_BYTES))
        if self._needs_credentials(environ, head):
            return plain_response(
                start_response,
                "401 Unauthorized",
                "writing needs a user name and password\n",
                [("WWW-Authenticate", f'Basic realm="{self.config.realm}"')],
            )
        with tip_changes.serving(environ):
            return self._serve(relpath, head, body, remaining - len(head), start_response)

    def _needs_credentials(self, environ: dict[str, Any], head: bytes) -> bool:
        """An anonymous write to a writable tree: ask for a password."""
        return (
            self.config.mode == READ_WRITE
            and not environ.get("REMOTE_USER")
            and not is_read(request_verb(head))
        )

    def _serve(
        self, relpath: str, head: bytes, body: Any, remaining: int, start_response: StartResponse
    ) -> list[bytes]:
        """Feed the request to Breezy's protocol in chunks; answer as it writes."""
        transport = self.backing_transport.clone(relpath)
        writer = ResponseWriter(start_response)
        factory, unused = medium._get_protocol_factory_for_bytes(head)
        server_protocol = factory(transport, writer.write, None, self.backing_transport)
        server_protocol.accept_bytes(unused)
        while remaining > 0 and server_protocol.next_read_size():
            chunk = body.read(min(remaining, READ_CHUNK))
            if not chunk:
                break
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


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """WSGI entry point named by bzr.wsgi."""
    try:
        config = SmartServerEnviron.from_environ(environ)
    except MisconfiguredError as error:
        environ["wsgi.errors"].write(f"trac-breezy: {error}\n")
        return plain_response(
            start_response, "500 Internal Server Error", "smart server misconfigured\n"
        )
    return app_for(config)(environ, start_response)
