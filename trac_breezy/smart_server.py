"""Breezy's smart server over HTTP: many roots, one URL per branch, bounded memory.

Apache tells each request which tree it belongs to through the WSGI environ
(`bzr_wsgi.root`, `bzr_wsgi.prefix`, `bzr_wsgi.mode`, `bzr_wsgi.realm`, set with
`SetEnv`, plus `bzr_wsgi.trac_env_parent_dir` for announcing pushes to Trac).
One `SmartApp` is built per (root, prefix, mode, realm, Trac parent directory)
and reused by every later request and thread: building one starts a chroot
server and registers the push hook, which must not happen per request.

We do not use Breezy's stock `breezy.transport.http.wsgi.SmartWSGIApp`, for
reasons it cannot be configured around:

* Access per request kind. Every smart request is a POST, so Apache cannot tell
  a pull from a push. `SmartApp` reads the verb at the start of each request and
  looks it up in Breezy's own registry (`request_handlers.get_info`): anything
  not tagged `read` (`idem`, `semi`, `semivfs`, `mutate`, `stream`, or an
  unknown verb) is a write and needs an authenticated user (Apache's
  `REMOTE_USER`). An anonymous write gets `401` + `WWW-Authenticate`, and `brz`
  retries it with credentials, so reads and writes share one URL.
* Memory. The stock app reads the whole request body, then builds the whole
  response, in memory. `SmartApp` feeds the body to Breezy's protocol decoder in
  chunks and streams large responses; `insert_stream` gets a bounded queue so a
  fast client cannot pile a big push up in the server's memory.
* Confinement. A symlink inside the root must not lead outside it
  (`ConfinedTransport`), and error texts sent to clients must not show server
  paths (`_scrub_paths`).
* Lock contention. A push to a branch another push has locked fails at once
  with a lock error (`FailFastBranchLock`) instead of waiting 30 s and then
  failing as "diverged".
* A client bug. Over bzr+http, `brz init URL` and server-to-server `brz branch`
  send `mkdir .` twice, and Breezy's HTTP client crashes on the `FileExists`
  error a VFS call gets back (it decodes a str). Creating a plain directory that
  already exists is therefore answered with success, as the client meant it
  (`IdempotentMkdir`); a directory holding a `.bzr` still gets `FileExists`.
"""

from __future__ import annotations

import os
import queue
import struct
import threading
from collections.abc import Callable, Iterable
from typing import Any

from breezy import urlutils
from breezy.bzr.smart import branch as smart_branch
from breezy.bzr.smart import medium, protocol, vfs
from breezy.bzr.smart import repository as smart_repository
from breezy.bzr.smart import request as smart_request
from breezy.transport import NoSuchFile, chroot, get_transport, local, readonly
from fastbencode import bdecode_as_tuple

from trac_breezy import push_hook
from trac_breezy.settings import READ_ONLY, READ_WRITE, REALM

MODES = (READ_ONLY, READ_WRITE)
SMART_SUFFIX = "/.bzr/smart"

# How much of a request body is read to find its verb (the verb and the
# request's arguments come first; 64 KiB is far more than they ever take).
HEAD_BYTES = 64 * 1024
# Request bodies are fed to Breezy in pieces of this size.
READ_CHUNK = 256 * 1024
# Responses up to this size are sent with a Content-Length; larger ones are
# streamed (chunked) as Breezy produces them.
RESPONSE_BUFFER = 1024 * 1024
# Body chunks of one insert_stream that may wait for the inserter thread.
INSERT_QUEUE_CHUNKS = 8

StartResponse = Callable[..., Any]
AppKey = tuple[str, str, str, str, str]

# -- classifying requests --------------------------------------------------------


def request_verb(head: bytes) -> bytes | None:
    """The verb of the smart request that starts with `head`, or None.

    Understands protocol 3 (`bzr message 3`: a length-prefixed bencoded header
    dict, then a structure part whose first item is the verb) and the older
    line-based protocols 2 and 1 (`verb\\x01arg...\\n`).
    """
    try:
        if head.startswith(protocol.MESSAGE_VERSION_THREE):
            rest = head[len(protocol.MESSAGE_VERSION_THREE) :]
            (headers_length,) = struct.unpack("!L", rest[:4])
            rest = rest[4 + headers_length :]
            if rest[:1] != b"s":
                return None
            (length,) = struct.unpack("!L", rest[1:5])
            structure = bdecode_as_tuple(rest[5 : 5 + length])
            verb = structure[0] if structure else None
            return verb if isinstance(verb, bytes) else None
        if head.startswith(protocol.REQUEST_VERSION_TWO):
            head = head[len(protocol.REQUEST_VERSION_TWO) :]
        line, newline, _ = head.partition(b"\n")
        return line.split(b"\x01", 1)[0] if newline and line else None
    except (struct.error, ValueError, TypeError):
        return None


def is_read(verb: bytes | None) -> bool:
    """True only for verbs Breezy tags `read`; unknown verbs count as writes."""
    if verb is None:
        return False
    try:
        return smart_request.request_handlers.get_info(verb) == "read"
    except KeyError:
        return False


# -- confinement -----------------------------------------------------------------------


class ConfinedTransport(local.LocalTransport):
    """A local transport that refuses paths whose real location is outside `root`.

    Breezy's chroot stops `..` in URLs and smart-protocol paths, but the file
    system follows symlinks; this resolves each path before use.
    """

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
        return path


_scrub_roots: list[tuple[bytes, bytes]] = []
_original_translate_error = smart_request._translate_error


def _scrub_paths(err: BaseException) -> tuple:
    """Breezy's error translation, with the server's root paths removed."""

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value.encode("utf-8")).decode("utf-8")
        if isinstance(value, bytes):
            for url, path in _scrub_roots:
                value = value.replace(url, b"").replace(path, b"")
        return value

    return tuple(scrub(item) for item in _original_translate_error(err))


# -- request handlers we replace (see the module docstring) ----------------------------


class IdempotentMkdir(vfs.MkdirRequest):
    """`mkdir` of an existing plain directory succeeds (see the module docstring)."""

    def do(self, relpath: bytes, mode: bytes) -> smart_request.SmartServerResponse:
        path = self.translate_client_path(relpath)
        transport = self._backing_transport
        if not transport.is_readonly():
            try:
                is_plain_dir = transport.stat(path).st_mode & 0o170000 == 0o040000 and not (
                    transport.has(urlutils.join(path, ".bzr"))
                )
            except NoSuchFile:
                is_plain_dir = False
            if is_plain_dir:
                return smart_request.SuccessfulSmartServerResponse((b"ok",))
        return super().do(relpath, mode)


class BoundedInsertQueue:
    """insert_stream whose chunks wait in a bounded queue (memory stays flat).

    Breezy's handler queues every body chunk for its inserter thread without
    limit, so a client faster than the disk piles the push up in memory. This
    repeats Breezy's do_insert_stream_request with a bounded queue (the queue
    must exist before the thread starts) and makes do_chunk wait for room.
    """

    queue: queue.Queue
    insert_thread: threading.Thread | None

    def do_insert_stream_request(self, repository: Any, resume_tokens: bytes) -> None:
        self.tokens = [t.decode("utf-8") for t in resume_tokens.split(b" ") if t]
        self.repository = repository
        self.queue = queue.Queue(maxsize=INSERT_QUEUE_CHUNKS)
        self.insert_thread = threading.Thread(target=self._inserter_thread)  # type: ignore[attr-defined]
        self.insert_thread.start()

    def do_chunk(self, body_stream_chunk: bytes) -> None:
        while True:
            try:
                self.queue.put(body_stream_chunk, timeout=1.0)
                return
            except queue.Full:
                if self.insert_thread is None or not self.insert_thread.is_alive():
                    return  # the inserter failed; do_end reports its error


class BoundedInsertStreamLocked(
    BoundedInsertQueue, smart_repository.SmartServerRepositoryInsertStreamLocked
):
    pass


class BoundedInsertStream_1_19(
    BoundedInsertQueue, smart_repository.SmartServerRepositoryInsertStream_1_19
):
    pass


class BoundedInsertStream(BoundedInsertQueue, smart_repository.SmartServerRepositoryInsertStream):
    pass


class FailFastBranchLock(smart_branch.SmartServerBranchRequestLockWrite):
    """`Branch.lock_write` answers LockContention at once if the branch is locked.

    Breezy's server would wait up to 30 s for the lock (holding a server
    thread), then let the second of two simultaneous pushes fail with a
    confusing "diverged" error. Repository locks keep waiting: pushes of
    different branches into one shared repository take turns.
    """

    def do_with_branch(self, branch: Any, branch_token: bytes = b"", repo_token: bytes = b""):
        if not branch_token and branch.get_physical_lock_status():
            return smart_request.FailedSmartServerResponse((b"LockContention",))
        return super().do_with_branch(branch, branch_token, repo_token)


_installed = False


def install_request_overrides() -> None:
    """Put our handlers and error scrubbing into Breezy's registry (once)."""
    global _installed
    if _installed:
        return
    handlers = smart_request.request_handlers
    for verb, handler in (
        (b"mkdir", IdempotentMkdir),
        (b"Branch.lock_write", FailFastBranchLock),
        (b"Repository.insert_stream", BoundedInsertStream),
        (b"Repository.insert_stream_1.19", BoundedInsertStream_1_19),
        (b"Repository.insert_stream_locked", BoundedInsertStreamLocked),
    ):
        info = handlers.get_info(verb)
        handlers.remove(verb)
        handlers.register(verb, handler, info=info)
    smart_request._translate_error = _scrub_paths
    _installed = True


def preload() -> None:
    """Import what the first requests would otherwise import lazily.

    Breezy imports request handlers and repository formats on first use,
    which made the first smart request of each daemon process take ~0.7 s.
    bzr.wsgi is imported when a daemon process starts (WSGIImportScript), so
    this moves that cost before the first client arrives.
    """
    import breezy.bzr  # noqa: F401 - registers the bzr formats
    from breezy import controldir

    install_request_overrides()
    for verb in list(smart_request.request_handlers.keys()):
        smart_request.request_handlers.get(verb)
    for name in ("2a", "pack-0.92", "1.14"):
        controldir.format_registry.make_controldir(name)


# -- responses ------------------------------------------------------------------------


class ResponseWriter:
    """Collects Breezy's output; switches to streaming once it grows large."""

    def __init__(self, start_response: StartResponse) -> None:
        self._start_response = start_response
        self._chunks: list[bytes] = []
        self._size = 0
        self._write: Callable[[bytes], Any] | None = None

    @property
    def started(self) -> bool:
        return self._write is not None or self._size > 0

    def write(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size >= RESPONSE_BUFFER:
            self._flush()

    def _flush(self) -> None:
        if self._write is None:
            self._write = self._start_response(
                "200 OK", [("Content-Type", "application/octet-stream")]
            )
        self._write(b"".join(self._chunks))
        self._chunks, self._size = [], 0

    def finish(self) -> list[bytes]:
        if self._write is not None:
            self._flush()
            return []
        body = b"".join(self._chunks)
        self._start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))],
        )
        return [body]


def plain_response(
    start_response: StartResponse, status: str, text: str, headers=()
) -> list[bytes]:
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


# -- the application ----------------------------------------------------------------


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


class SmartApp:
    """Breezy's smart server for one root directory (see the module docstring)."""

    def __init__(self, root: str, prefix: str, mode: str, realm: str, trac_parent: str) -> None:
        install_request_overrides()
        root = os.path.realpath(root)
        confined = ConfinedTransport(urlutils.local_path_to_url(root))
        backing = (
            confined
            if mode == READ_WRITE
            else readonly.ReadonlyTransportDecorator(
                "readonly+" + confined.base, _decorated=confined
            )
        )
        _scrub_roots.append((confined.base.rstrip("/").encode(), root.encode()))
        self.chroot_server = chroot.ChrootServer(backing)
        self.chroot_server.start_server()
        self.backing_transport = get_transport(self.chroot_server.get_url())
        self.prefix, self.mode, self.realm = prefix, mode, realm
        push_hook.register_root(self.chroot_server.get_url(), root, trac_parent)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST":
            return plain_response(
                start_response,
                "405 Method Not Allowed",
                "smart requests are POSTs\n",
                [("Allow", "POST")],
            )
        relpath = client_relpath(environ, self.prefix)
        if relpath is None:
            return plain_response(start_response, "404 Not Found", "no such branch location\n")
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"]
        head = read_exactly(body, min(remaining, HEAD_BYTES))
        remaining -= len(head)
        if (
            self.mode == READ_WRITE
            and not environ.get("REMOTE_USER")
            and not is_read(request_verb(head))
        ):
            return plain_response(
                start_response,
                "401 Unauthorized",
                "writing needs a user name and password\n",
                [("WWW-Authenticate", f'Basic realm="{self.realm}"')],
            )
        return self._serve(relpath, head, body, remaining, start_response)

    def _serve(
        self, relpath: str, head: bytes, body: Any, remaining: int, start_response
    ) -> list[bytes]:
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


_apps: dict[AppKey, SmartApp] = {}
_apps_lock = threading.Lock()


def app_key(environ: dict[str, Any]) -> AppKey:
    """The (root, prefix, mode, realm, Trac parent dir) Apache configured for a request."""
    root = environ.get("bzr_wsgi.root")
    prefix = environ.get("bzr_wsgi.prefix")
    mode = environ.get("bzr_wsgi.mode", READ_ONLY)
    realm = environ.get("bzr_wsgi.realm", REALM)
    if not root or not prefix:
        raise LookupError("bzr_wsgi.root and bzr_wsgi.prefix must be set with SetEnv")
    if mode not in MODES:
        raise LookupError(f"bzr_wsgi.mode must be one of {MODES}, not {mode!r}")
    trac_parent = environ.get("bzr_wsgi.trac_env_parent_dir", "")
    return root, prefix if prefix.endswith("/") else prefix + "/", mode, realm, trac_parent


def app_for(key: AppKey) -> SmartApp:
    """The app for `key`, built on first use (once, even with many threads)."""
    app = _apps.get(key)
    if app is None:
        with _apps_lock:
            app = _apps.get(key)
            if app is None:
                app = _apps[key] = SmartApp(*key)
    return app


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """WSGI entry point named by bzr.wsgi."""
    try:
        key = app_key(environ)
    except LookupError as error:
        environ["wsgi.errors"].write(f"trac-breezy: {error}\n")
        return plain_response(
            start_response, "500 Internal Server Error", "smart server misconfigured\n"
        )
    return app_for(key)(environ, start_response)
