"""Breezy smart-request handlers we replace, and the warm-up of a daemon process.

Each replacement fixes something Breezy's stock handler gets wrong for a
multi-user HTTP server (see the package docstring): `mkdir` of an existing
plain directory succeeds and `list_dir` of what is no directory lists nothing
(a client bug), `insert_stream` keeps its memory
bounded and ends with its request, `Branch.lock_write` fails at once on a
locked branch, `Branch.get_all_reference_info` of an old branch is answered
(`old_formats`), `get` and `readv` stream (`reads`), and the verbs in
`NOT_SERVED` are answered as unknown. `install_request_overrides` puts them,
and the path scrubbing of failed replies (`confinement`), into Breezy, keeping
each verb's tag.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from breezy import errors, urlutils
from breezy.branch import Branch
from breezy.bzr.smart import branch as smart_branch
from breezy.bzr.smart import repository as smart_repository
from breezy.bzr.smart import request as smart_request
from breezy.bzr.smart import vfs
from breezy.repository import Repository
from breezy.transport import NoSuchFile

from trac_breezy import log
from trac_breezy.smart_server.confinement import ScrubbingRequestHandler, scrub_paths
from trac_breezy.smart_server.old_formats import (
    CheckoutMetadirOfAllInOne,
    CloningMetadirOfAllInOne,
    NoReferenceInfo,
    all_in_one,
    refuse_lock_of_all_in_one,
    register,
)
from trac_breezy.smart_server.reads import StreamingGet, StreamingReadv

# Body chunks of one insert_stream that may wait for the inserter thread.
INSERT_QUEUE_CHUNKS = 8
# How often (seconds) a full insert queue checks that its inserter still lives.
INSERT_QUEUE_POLL = 1.0
# How long (seconds) a request that ends before its push's end waits for the
# inserter thread to stop.
ABANDON_WAIT = 120.0

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


class ListingOfNoDirectory(vfs.ListDirRequest):
    """`list_dir` of a missing path or of a file lists nothing, instead of an error.

    Over `bzr+http://` the stock client cannot read any error reply to a VFS
    call (shared/NOTES.md: `RemoteTransport._call2` decodes a str path), so
    `brz check URL` crashed: its search for branches (`find_controldirs`)
    lists every entry of a repository's folder, files too, and would skip the
    NoSuchFile it cannot decode. An empty listing is what it skips to.
    """

    def do(self, relpath: bytes) -> smart_request.SmartServerResponse:
        try:
            return super().do(relpath)
        except (NoSuchFile, errors.PathError):
            return smart_request.SuccessfulSmartServerResponse((b"names",))


# Chunks of the push (bytes), or an end marker (StopIteration, ABANDONED).
class InsertQueue(queue.Queue[Any]):
    """A bounded queue in which the end markers always fit (putting one never blocks)."""

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is StopIteration or item is ABANDONED:
            with self.not_full:
                self._put(item)
                self.unfinished_tasks += 1
                self.not_empty.notify()
            return
        super().put(item, block, timeout)


# Put in an insert queue when its request ends without the push's end.
ABANDONED = object()
_request = threading.local()


@contextmanager
def ending_abandoned_inserts() -> Iterator[None]:
    """While one request is served: a push it leaves unfinished ends with it."""
    _request.inserts = []
    try:
        yield
    finally:
        inserts, _request.inserts = _request.inserts, None
        for insert in inserts:
            insert.abandon()


class BoundedInsertQueue:
    """insert_stream whose chunks wait in a bounded queue, and that ends with its request.

    Breezy's handler queues every body chunk for its inserter thread without
    limit, so a client faster than the disk piles the push up in memory. This
    repeats Breezy's do_insert_stream_request with a bounded queue (the queue
    must exist before the thread starts) and makes do_chunk wait for room.

    If the request ends before the push's end (the client went away), Breezy's
    inserter would wait for more chunks for ever, holding the repository's
    lock: `abandon` makes its stream fail (the write group is aborted) and
    releases the lock, as Breezy's do_end would have.
    """

    queue: queue.Queue[Any]  # an InsertQueue
    # None until started; Breezy's classes say Thread (mypy: the ignores below).
    insert_thread: threading.Thread | None
    repository: Repository

    def do_insert_stream_request(self, repository: Repository, resume_tokens: bytes) -> None:
        self.tokens = [t.decode("utf-8") for t in resume_tokens.split(b" ") if t]
        self.repository = repository
        self.queue = InsertQueue(maxsize=INSERT_QUEUE_CHUNKS)
        # In the request's context: its access rules (`rights`) bind the inserter too.
        self.insert_thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._inserter_thread,),  # type: ignore[attr-defined]
        )
        self.insert_thread.start()
        pending = getattr(_request, "inserts", None)
        if pending is not None:
            pending.append(self)

    def do_chunk(self, body_stream_chunk: bytes) -> None:
        # Once the inserter has failed, the rest of the push is dropped at once
        # (do_end reports the error).
        while self.insert_thread is not None and self.insert_thread.is_alive():
            try:
                self.queue.put(body_stream_chunk, timeout=INSERT_QUEUE_POLL)
                return
            except queue.Full:
                continue

    def blocking_byte_stream(self) -> Iterator[bytes]:
        while True:
            chunk = self.queue.get()
            if chunk is StopIteration:
                return
            if chunk is ABANDONED:
                raise errors.ConnectionReset("the client stopped sending its push")
            yield chunk

    def do_end(self) -> Any:
        pending = getattr(_request, "inserts", None) or []
        if self in pending:
            pending.remove(self)
        return super().do_end()  # type: ignore[misc]

    def abandon(self) -> None:
        """End the inserter of a request that ended early, and release its lock."""
        thread = self.insert_thread
        if thread is None:
            return
        self.queue.put(ABANDONED)
        thread.join(ABANDON_WAIT)
        if thread.is_alive():
            log(f"an abandoned push's inserter is still running after {ABANDON_WAIT:.0f} s")
            return
        try:
            self.repository.unlock()
        except Exception as error:  # the request is over; nobody else would report it
            log(f"unlocking the repository of an abandoned push failed: {error!r}")


class BoundedInsertStreamLocked(  # type: ignore[misc]  # insert_thread: see BoundedInsertQueue
    BoundedInsertQueue, smart_repository.SmartServerRepositoryInsertStreamLocked
):
    pass


class BoundedInsertStream_1_19(  # type: ignore[misc]
    BoundedInsertQueue, smart_repository.SmartServerRepositoryInsertStream_1_19
):
    pass


class BoundedInsertStream(  # type: ignore[misc]
    BoundedInsertQueue, smart_repository.SmartServerRepositoryInsertStream
):
    pass


class FailFastBranchLock(smart_branch.SmartServerBranchRequestLockWrite):
    """`Branch.lock_write` answers LockContention at once if the branch is locked.

    Breezy's server would wait up to 30 s for the lock (holding a server
    thread), then let the second of two simultaneous pushes fail with a
    confusing "diverged" error. A weave branch (bzr 0.x), which no smart
    server can lock, is refused with one line naming `brz upgrade`
    (`old_formats`). Repository locks keep waiting: pushes of
    different branches into one shared repository take turns. A lock whose
    holder is a dead process of this host (a daemon killed mid-push) is left
    to Breezy, which steals it (`locks.steal_dead`), so the push can be
    repeated without a `brz break-lock`.
    """

    def do_with_branch(
        self, branch: Branch, branch_token: bytes = b"", repo_token: bytes = b""
    ) -> smart_request.SmartServerResponse:
        if all_in_one(branch):
            return refuse_lock_of_all_in_one()
        locked = not branch_token and branch.get_physical_lock_status()
        if locked and not holder_is_dead(branch):
            return smart_request.FailedSmartServerResponse((b"LockContention",))
        return super().do_with_branch(branch, branch_token, repo_token)


def holder_is_dead(branch: Branch) -> bool:
    """Whether the process holding `branch`'s lock is known to be dead (Breezy's test)."""
    try:
        holder = branch.control_files._lock.peek()  # type: ignore[attr-defined]  # BzrBranch
    except Exception:  # another branch format, or the lock went away meanwhile
        return False
    return holder is not None and holder.is_lock_holder_known_dead()


class NotServed(smart_request.SmartServerRequest):
    """A verb answered as unknown (`UnknownMethod`, as by a server without it), to everyone.

    `Repository.tarball` copies the whole repository to the temporary directory
    and answers it as one body; `get_bundle` writes a bundle of the whole
    history to a temporary file and answers it whole. No Breezy 3.3 client
    sends either (`RemoteRepository._get_tarball` has no caller); a client that
    did would read UnknownMethod as "not offered" and fetch the usual way.
    """

    verb = b""

    def do(self, *args: Any) -> smart_request.SmartServerResponse:
        return smart_request.FailedSmartServerResponse((b"UnknownMethod", self.verb))


def not_served(verb: bytes) -> type[NotServed]:
    return type("NotServed", (NotServed,), {"verb": verb})


NOT_SERVED = (b"Repository.tarball", b"get_bundle")

OVERRIDES: tuple[tuple[bytes, type], ...] = (
    *((verb, not_served(verb)) for verb in NOT_SERVED),
    (b"get", StreamingGet),
    (b"readv", StreamingReadv),
    (b"mkdir", IdempotentMkdir),
    (b"list_dir", ListingOfNoDirectory),
    (b"Branch.lock_write", FailFastBranchLock),
    (b"Repository.insert_stream", BoundedInsertStream),
    (b"Repository.insert_stream_1.19", BoundedInsertStream_1_19),
    (b"Repository.insert_stream_locked", BoundedInsertStreamLocked),
    (b"Branch.get_all_reference_info", NoReferenceInfo),
    (b"BzrDir.cloning_metadir", CloningMetadirOfAllInOne),
    (b"BzrDir.checkout_metadir", CheckoutMetadirOfAllInOne),
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
    smart_request.SmartServerRequestHandler = ScrubbingRequestHandler  # type: ignore[misc]
    _installed = True


def preload() -> None:
    """Import what the first requests would otherwise import lazily.

    Breezy imports request handlers and repository formats on first use,
    which made the first smart request of each daemon process take ~0.7 s.
    bzr.wsgi is imported when a daemon process starts (WSGIImportScript), so
    this moves that cost before the first client arrives.
    """
    from breezy import controldir

    register()  # every format Breezy reads, the pre-1.0 ones too (old_formats)

    install_request_overrides()
    for verb in list(smart_request.request_handlers.keys()):
        smart_request.request_handlers.get(verb)
    for name in ("2a", "pack-0.92", "1.14"):
        controldir.format_registry.make_controldir(name)
