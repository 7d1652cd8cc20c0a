"""Serve the smart-server app to the real brz client, without Apache.

A small threaded WSGI server stands in for Apache: it sets what `SetEnv` and
mod_wsgi would (`SmartServerEnviron`, Trac's parent directory, SCRIPT_NAME)
and checks Basic auth like mod_auth_basic with anonymous reads allowed
(credentials that are sent are always checked), and notes the verb, status
and user of every request (`Server.seen`). The same app runs under Apache in
the end-to-end tests.

Request bodies are handed over as Apache does with `WSGIChunkedRequest On`: a
chunked body (`Transfer-Encoding: chunked`, which wsgiref does not decode) is
decoded as the app reads it and the app gets no CONTENT_LENGTH; a request with
neither header has an empty body. `Server(..., accept_chunked=False)` is a
server without that setting: chunked requests get 411, and its answers do not
say that chunked requests are accepted. The verbs of requests whose bodies
came chunked are noted too (`Server.chunked`). `Server(..., stock=True)`
serves Breezy's own WSGI app instead of ours, with a password for everything;
`Server(..., tls=True)` serves bzr+https:// with Breezy's test certificates.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import ssl
import struct
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from fastbencode import bdecode_as_tuple
from stack import Brz

from trac_breezy.setenv import REALM, TRAC_ENV_PARENT_DIR_KEY, SmartServerEnviron
from trac_breezy.smart_server.app import HEAD_BYTES, application, read_exactly
from trac_breezy.smart_server.responses import CHUNKED_REQUESTS_HEADER
from trac_breezy.smart_server.verbs import request_verb

USERS = {"alice": "wonderland", "bob": "builder"}
PREFIX = "/bzr/"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class TLSWSGIServer(ThreadingWSGIServer):
    """Ends each TLS connection with close_notify, which clients reading an
    answer to its end (there is no Content-Length) need to see."""

    def shutdown_request(self, request):
        with contextlib.suppress(OSError, ValueError):
            request.settimeout(1)
            request.unwrap()
        super().shutdown_request(request)


def shipped_certificate(name: str) -> Path:
    """One of the certificates Breezy ships for its tests (for 127.0.0.1, valid
    until 3025; "ca.crt" is their CA). Not through `breezy.tests`, which needs
    testtools."""
    import breezy

    return Path(breezy.__file__).parent / "tests" / "ssl_certs" / name


def tls_context() -> ssl.SSLContext:
    """The server side of Breezy's test certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        shipped_certificate("server.crt"), shipped_certificate("server_without_pass.key")
    )
    return context


Seen = list[tuple[bytes | None, str, str | None]]  # (verb, status code, user) of each request
# The environ key saying that a request's body came chunked (set by `chunked_bodies`).
CHUNKED = "harness.chunked"


class Dechunked:
    """A chunked request body, decoded as it is read: what mod_wsgi hands the
    app with `WSGIChunkedRequest On`. read() returns b"" at the body's end."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._left = 0  # bytes left in the current chunk
        self._done = False

    def read(self, size: int = -1) -> bytes:
        parts = []
        while size != 0 and not self._done:
            if not self._left:
                self._next_chunk()
                continue
            data = self._raw.read(self._left if size < 0 else min(size, self._left))
            if not data:
                raise OSError("request data read error: the client went away mid-chunk")
            parts.append(data)
            self._left -= len(data)
            if size > 0:
                size -= len(data)
            if not self._left:
                self._raw.readline(16)  # the CRLF after each chunk's data
        return b"".join(parts)

    def _next_chunk(self) -> None:
        line = self._raw.readline(1024)
        self._left = int(line.split(b";")[0], 16)  # ValueError on anything else
        if not self._left:
            while self._raw.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            self._done = True


class Replayed:
    """A request body whose first bytes (`head`) were already read from `rest`."""

    def __init__(self, head: bytes, rest) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        data = self._head.read(size)
        if size < 0:
            return data + self._rest.read()
        return data + self._rest.read(size - len(data)) if len(data) < size else data


def chunked_bodies(app, accept: bool = True, chunked: list[bytes | None] | None = None):
    """`app` behind what Apache and mod_wsgi do with request bodies (module docstring).

    A chunked request refused (411) is noted in `chunked` as None: its verb is
    in the body, which is not read.
    """

    def unadvertised(start_response):
        def start(status, headers, *exc_info):
            headers = [(k, v) for k, v in headers if k.lower() != CHUNKED_REQUESTS_HEADER.lower()]
            return start_response(status, headers, *exc_info)

        return start

    def serve(environ, start_response):
        is_chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        environ[CHUNKED] = is_chunked
        if is_chunked and not accept:
            if chunked is not None:
                chunked.append(None)
            start_response("411 Length Required", [("Content-Type", "text/plain")])
            return [b"chunked request bodies are not accepted\n"]
        if is_chunked:
            environ.pop("CONTENT_LENGTH", None)
            environ["wsgi.input"] = Dechunked(environ["wsgi.input"])
        elif not environ.get("CONTENT_LENGTH"):
            environ["wsgi.input"] = io.BytesIO()
        return app(environ, start_response if accept else unadvertised(start_response))

    return serve


def recording(app, seen: Seen, chunked: list[bytes | None] | None = None):
    """`app`, noting the verb, status and user of each request in `seen`, and
    the verb of each request whose body came chunked in `chunked`."""

    def record(environ, start_response):
        body = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        head = read_exactly(body, min(int(length), HEAD_BYTES) if length else HEAD_BYTES)
        environ["wsgi.input"] = Replayed(head, body)
        verb = request_verb(head)
        if chunked is not None and environ.get(CHUNKED):
            chunked.append(verb)

        def noting(status, headers, *exc_info):
            seen.append((verb, status.split()[0], environ.get("REMOTE_USER")))
            return start_response(status, headers, *exc_info)

        return app(environ, noting)

    return record


def basic_auth(app, required: bool):
    """Apache's Basic auth: credentials that are sent are checked; without
    them, a request goes on anonymously unless `required`."""

    def check(environ, start_response):
        header = environ.get("HTTP_AUTHORIZATION")
        if header:
            user, _, password = base64.b64decode(header.split()[1]).decode().partition(":")
            if USERS.get(user) != password:
                return unauthorized(start_response, b"wrong credentials\n")
            environ["REMOTE_USER"] = user
        elif required:
            return unauthorized(start_response, b"a user name and password are needed\n")
        return app(environ, start_response)

    return check


def unauthorized(start_response, text: bytes) -> list[bytes]:
    start_response("401 Unauthorized", [("WWW-Authenticate", f'Basic realm="{REALM}"')])
    return [text]


def apache_like(
    root: Path,
    mode: str,
    trac_parent: Path | None = None,
    seen: Seen | None = None,
    chunked: list[bytes | None] | None = None,
    authz_file: Path | None = None,
):
    """What Apache does before mod_wsgi calls bzr.wsgi: routing, SetEnv, auth
    (and, given `seen`, what each request was: see `recording`)."""
    setenv = SmartServerEnviron(
        root=str(root), prefix=PREFIX, mode=mode, realm=REALM, authz_file=str(authz_file or "")
    ).setenv()
    if trac_parent:
        setenv.append((TRAC_ENV_PARENT_DIR_KEY, str(trac_parent)))

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if not path.startswith(PREFIX) or not path.endswith("/.bzr/smart"):
            start_response("404 Not Found", [])
            return [b""]
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = path, ""
        environ.update(setenv)
        return authenticated(environ, start_response)

    smart_app = application if seen is None else recording(application, seen, chunked)
    authenticated = basic_auth(smart_app, required=False)

    return app


def stock_app(root: Path, seen: Seen, chunked: list[bytes | None]):
    """Breezy's own WSGI smart server (writable, no chunked-requests header),
    with a password needed for every request."""
    from breezy.transport.http.wsgi import make_app

    stock = make_app(
        str(root),
        PREFIX,
        path_var="PATH_INFO",
        readonly=False,
        load_plugins=False,
        enable_logging=False,
    )
    return basic_auth(recording(stock, seen, chunked), required=True)


class Server:
    def __init__(
        self,
        root: Path,
        mode: str,
        trac_parent: Path | None = None,
        *,
        accept_chunked: bool = True,
        stock: bool = False,
        tls: bool = False,
        authz_file: Path | None = None,
    ) -> None:
        self.root = root
        self.scheme = "https" if tls else "http"
        self.seen: Seen = []  # (verb, status code, user) of every request served
        # The verbs of the requests whose bodies came chunked (None: refused unread).
        self.chunked: list[bytes | None] = []
        if stock:
            app = stock_app(root, self.seen, self.chunked)
        else:
            app = apache_like(root, mode, trac_parent, self.seen, self.chunked, authz_file)
        app = chunked_bodies(app, accept_chunked, self.chunked)
        server_class = TLSWSGIServer if tls else ThreadingWSGIServer
        self.httpd = make_server("127.0.0.1", 0, app, server_class, QuietHandler)
        if tls:
            self.httpd.socket = tls_context().wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"bzr+{self.scheme}://127.0.0.1:{self.httpd.server_port}{PREFIX}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def with_credentials(brz: Brz, server: Server, user: str, password: str) -> None:
    conf = brz.config_dir / "authentication.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"[server]\nscheme={server.scheme}\nhost=127.0.0.1\nport={server.httpd.server_port}\n"
        f"user={user}\npassword={password}\n"
    )


def post_smart(server: Server, path: str, body: bytes, user: str | None) -> tuple[int, bytes]:
    """POST a raw smart request to `PREFIX + path + .bzr/smart` as `user` (None: anonymous)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.httpd.server_port, timeout=30)
    headers = {"Content-Type": "application/octet-stream"}
    if user:
        token = base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    connection.request("POST", PREFIX + path + ".bzr/smart", body=body, headers=headers)
    response = connection.getresponse()
    try:
        return response.status, response.read()
    finally:
        connection.close()


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
