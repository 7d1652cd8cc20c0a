"""Breezy smart-request handlers we replace, and the warm-up of a daemon process.

Each replacement fixes something Breezy's stock handler gets wrong for a
multi-user HTTP server (see the package docstring): `mkdir` of an existing
plain directory succeeds (a client bug), `insert_stream` keeps its memory
bounded, and `Branch.lock_write` fails at once on a locked branch.
`install_request_overrides` puts them, and the path scrubbing of error texts,
into Breezy's registry, keeping each verb's read/write tag.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from breezy import urlutils
from breezy.bzr.smart import branch as smart_branch
from breezy.bzr.smart import repository as smart_repository
from breezy.bzr.smart import request as smart_request
from breezy.bzr.smart import vfs
from breezy.transport import NoSuchFile

from trac_breezy.smart_server.confinement import scrub_paths

# Body chunks of one insert_stream that may wait for the inserter thread.
INSERT_QUEUE_CHUNKS = 8
# How often (seconds) a full insert queue checks that its inserter still lives.
INSERT_QUEUE_POLL = 1.0

_S_IFMT, _S_IFDIR = 0o170000, 0o040000


class IdempotentMkdir(vfs.MkdirRequest):
    """`mkdir` of an existing plain directory succeeds (see the package docstring)."""

    def do(self, relpath: bytes, mode: bytes) -> smart_request.SmartServerResponse:
        path = self.translate_client_path(relpath)
        if not self._backing_transport.is_readonly() and self._is_plain_dir(path):
            return smart_request.SuccessfulSmartServerResponse((b"ok",))
        return super().do(relpath, mode)

    def _is_plain_dir(self, path: str) -> bool:
        """A directory that exists and holds no `.bzr`."""
        transport = self._backing_transport
        try:
            is_dir = transport.stat(path).st_mode & _S_IFMT == _S_IFDIR
            return is_dir and not transport.has(urlutils.join(path, ".bzr"))
        except NoSuchFile:
            return False


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
                self.queue.put(body_stream_chunk, timeout=INSERT_QUEUE_POLL)
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


OVERRIDES: tuple[tuple[bytes, type], ...] = (
    (b"mkdir", IdempotentMkdir),
    (b"Branch.lock_write", FailFastBranchLock),
    (b"Repository.insert_stream", BoundedInsertStream),
    (b"Repository.insert_stream_1.19", BoundedInsertStream_1_19),
    (b"Repository.insert_stream_locked", BoundedInsertStreamLocked),
)
_installed = False


def install_request_overrides() -> None:
    """Put our handlers and error scrubbing into Breezy's registry (once)."""
    global _installed
    if _installed:
        return
    handlers = smart_request.request_handlers
    for verb, handler in OVERRIDES:
        info = handlers.get_info(verb)
        handlers.remove(verb)
        handlers.register(verb, handler, info=info)
    smart_request._translate_error = scrub_paths
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
