"""Breezy's smart server as one WSGI application for many bzr roots.

Apache tells each request which tree it belongs to through the WSGI environ
(`bzr_wsgi.root`, `bzr_wsgi.prefix`, `bzr_wsgi.mode`, set with `SetEnv`).
Building Breezy's app is not free (plugin loading, a chroot server, a backing
transport), so one app is built per (root, prefix, mode) and reused by every
later request and thread; building per request would repeat all of that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from breezy.transport.http.wsgi import make_app

READ_ONLY = "read-only"
READ_WRITE = "read-write"
MODES = (READ_ONLY, READ_WRITE)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
AppKey = tuple[str, str, str]

_apps: dict[AppKey, WSGIApp] = {}
_apps_lock = threading.Lock()


def app_key(environ: dict[str, Any]) -> AppKey:
    """The (root, prefix, mode) a request is configured for by Apache."""
    root = environ.get("bzr_wsgi.root")
    prefix = environ.get("bzr_wsgi.prefix")
    mode = environ.get("bzr_wsgi.mode", READ_ONLY)
    if not root or not prefix:
        raise LookupError("bzr_wsgi.root and bzr_wsgi.prefix must be set with SetEnv")
    if mode not in MODES:
        raise LookupError(f"bzr_wsgi.mode must be one of {MODES}, not {mode!r}")
    return root, prefix if prefix.endswith("/") else prefix + "/", mode


def build_app(key: AppKey) -> WSGIApp:
    """Breezy's stock smart-server app for one root, chrooted to it."""
    root, prefix, mode = key
    # Plugins are loaded once per process by the first build; Breezy's own
    # trace file is off: warnings reach Apache's error log through stderr.
    return make_app(
        root, prefix, path_var="REQUEST_URI", readonly=mode == READ_ONLY, enable_logging=False
    )


def app_for(key: AppKey) -> WSGIApp:
    """The app for `key`, built on first use (once, even with many threads)."""
    app = _apps.get(key)
    if app is None:
        with _apps_lock:
            app = _apps.get(key)
            if app is None:
                app = _apps[key] = build_app(key)
    return app


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """WSGI entry point named by bzr.wsgi."""
    try:
        key = app_key(environ)
    except LookupError as error:
        environ["wsgi.errors"].write(f"trac-breezy: {error}\n")
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"smart server misconfigured; see the server log\n"]
    return app_for(key)(environ, start_response)
