"""Serve the smart-server app to the real brz client, without Apache.

A small threaded WSGI server stands in for Apache: it sets what `SetEnv` and
mod_wsgi would (`SmartServerEnviron`, Trac's parent directory, SCRIPT_NAME)
and checks Basic auth like mod_auth_basic with anonymous reads allowed
(credentials that are sent are always checked), and notes the verb, status
and user of every request (`Server.seen`). The same app runs under Apache in
the end-to-end tests.
"""

from __future__ import annotations

import base64
import io
import struct
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from fastbencode import bdecode_as_tuple
from stack import Brz

from trac_breezy.setenv import REALM, TRAC_ENV_PARENT_DIR_KEY, SmartServerEnviron
from trac_breezy.smart_server.app import HEAD_BYTES, application
from trac_breezy.smart_server.verbs import request_verb

USERS = {"alice": "wonderland"}
PREFIX = "/bzr/"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


Seen = list[tuple[bytes | None, str, str | None]]  # (verb, status code, user) of each request


def recording(app, seen: Seen):
    """`app`, noting the verb, status and user of each request in `seen`."""

    def record(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        verb = request_verb(body[:HEAD_BYTES])

        def noting(status, headers, *exc_info):
            seen.append((verb, status.split()[0], environ.get("REMOTE_USER")))
            return start_response(status, headers, *exc_info)

        return app(environ, noting)

    return record


def apache_like(root: Path, mode: str, trac_parent: Path | None = None, seen: Seen | None = None):
    """What Apache does before mod_wsgi calls bzr.wsgi: routing, SetEnv, auth
    (and, given `seen`, what each request was: see `recording`)."""
    setenv = SmartServerEnviron(root=str(root), prefix=PREFIX, mode=mode, realm=REALM).setenv()
    if trac_parent:
        setenv.append((TRAC_ENV_PARENT_DIR_KEY, str(trac_parent)))

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if not path.startswith(PREFIX) or not path.endswith("/.bzr/smart"):
            start_response("404 Not Found", [])
            return [b""]
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = path, ""
        environ.update(setenv)
        header = environ.get("HTTP_AUTHORIZATION")
        if header:
            user, _, password = base64.b64decode(header.split()[1]).decode().partition(":")
            if USERS.get(user) != password:
                start_response("401 Unauthorized", [("WWW-Authenticate", f'Basic realm="{REALM}"')])
                return [b"wrong credentials\n"]
            environ["REMOTE_USER"] = user
        return smart_app(environ, start_response)

    smart_app = application if seen is None else recording(application, seen)

    return app


class Server:
    def __init__(self, root: Path, mode: str, trac_parent: Path | None = None) -> None:
        self.root = root
        self.seen: Seen = []  # (verb, status code, user) of every request served
        app = apache_like(root, mode, trac_parent, self.seen)
        self.httpd = make_server("127.0.0.1", 0, app, ThreadingWSGIServer, QuietHandler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"bzr+http://127.0.0.1:{self.httpd.server_port}{PREFIX}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def with_credentials(brz: Brz, server: Server, user: str, password: str) -> None:
    conf = brz.config_dir / "authentication.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"[server]\nscheme=http\nhost=127.0.0.1\nport={server.httpd.server_port}\n"
        f"user={user}\npassword={password}\n"
    )


def local_branch(brz: Brz, path: Path, text: str = "one\n") -> Path:
    brz("init", str(path))
    (path / "file").write_text(text)
    brz("add", cwd=path)
    brz("commit", "-m", "one", cwd=path)
    return path


def smart_reply(data: bytes) -> tuple[bytes, tuple, bytes]:
    """A protocol-3 reply's status (b"S" or b"E"), arguments and body (its parts joined).

    An error in a body stream comes last: its status and structure win.
    """
    marker = b"bzr message 3 (bzr 1.6)\n"
    assert data.startswith(marker), data[:80]
    rest = data[len(marker) :]
    rest = rest[4 + struct.unpack("!L", rest[:4])[0] :]  # the headers
    status, args, body = b"", (), []
    while rest[:1] != b"e":
        kind, rest = rest[:1], rest[1:]
        if kind == b"o":
            status, rest = rest[:1], rest[1:]
            continue
        (length,) = struct.unpack("!L", rest[:4])
        part, rest = rest[4 : 4 + length], rest[4 + length :]
        if kind == b"s":
            args = bdecode_as_tuple(part)
        else:
            body.append(part)
    return status, args, b"".join(body)
