"""The smart server against a hostile client: every verb of Breezy's registry, raw.

Drives `SmartApp` directly (no HTTP, no brz) with requests a hostile client
could send: every verb Breezy registers, with paths and write-group tokens
holding `../`, huge numbers, empty values, and bodies to match. Anonymous
requests must leave the tree byte for byte as it was and create nothing
outside it; authenticated ones may change the tree, but no reply may show a
server path. Also: the request caps (413), the verbs no one gets, `get` and
`readv` of a big file in bounded memory, and a push whose client goes away.
"""

from __future__ import annotations

import gc
import hashlib
import io
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from breezy import lockdir
from breezy.bzr.smart.request import request_handlers
from fastbencode import bencode
from smart_harness import smart_reply
from stack import Brz

from trac_breezy.setenv import READ_ONLY, READ_WRITE, REALM, SmartServerEnviron
from trac_breezy.smart_server.access import (
    ANONYMOUS_BODY_LIMIT,
    AUTHENTICATED_BODY_LIMIT,
    KEY_LIST_BODY_LIMIT,
)
from trac_breezy.smart_server.app import HEAD_BYTES, SmartApp
from trac_breezy.smart_server.overrides import BoundedInsertQueue
from trac_breezy.smart_server.reads import WHOLE_BODY_LIMIT

VERBS = sorted(request_handlers.keys())
MARKER = b"bzr message 3 (bzr 1.6)\n"


def request(verb: bytes, *args, body: bytes | None = None, end: bool = True) -> bytes:
    """A protocol-3 request; `args` may hold lists (write-group tokens)."""
    headers = bencode({b"Software version": b"3.3.23"})
    structure = bencode([verb, *args])
    message = MARKER + struct.pack("!L", len(headers)) + headers
    message += b"s" + struct.pack("!L", len(structure)) + structure
    if body is not None:
        message += b"b" + struct.pack("!L", len(body)) + body
    return message + (b"e" if end else b"")


class Reply:
    """start_response and its write callable; keeps only a bounded copy of the body."""

    def __init__(self, keep: int = 1 << 20) -> None:
        self.keep, self.size, self.data = keep, 0, bytearray()

    def __call__(self, status: str, headers: list[tuple[str, str]]):
        self.status, self.headers = status, dict(headers)
        return self.write

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if len(self.data) < self.keep:
            self.data += data[: self.keep - len(self.data)]


class Input(io.RawIOBase):
    """wsgi.input: `data`, then nothing (or an error, as when a client goes away)."""

    def __init__(self, data: bytes, fail_at_end: bool = False) -> None:
        self.stream, self.fail_at_end, self.taken = io.BytesIO(data), fail_at_end, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.taken += len(data)
        if not data and self.fail_at_end:
            raise OSError("request data read error")
        return data


def serve(
    app: SmartApp,
    message: bytes,
    user: str | None = None,
    length: int | None = None,
    stream: Input | None = None,
) -> Reply:
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/bzr/.bzr/smart",
        "PATH_INFO": "",
        "CONTENT_LENGTH": str(len(message) if length is None else length),
        "wsgi.input": stream or Input(message),
    }
    if user:
        environ["REMOTE_USER"] = user
    reply = Reply()
    for data in app(environ, reply):
        reply.write(data)
    return reply


# -- a tree to attack ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared repository with a branch (packed: obsolete packs kept) and a standalone one."""
    base = tmp_path_factory.mktemp("hostile")
    brz, root = Brz(base / "home"), base / "root"
    brz("init-shared-repo", str(root / "repo"))
    trunk = root / "repo" / "trunk"
    brz("init", str(trunk))
    for n in range(3):
        (trunk / "file").write_text(f"{n}\n")
        brz("add", cwd=trunk)
        brz("commit", "-m", str(n), cwd=trunk)
    brz("pack", str(root / "repo"))
    brz("branch", str(trunk), str(root / "standalone"))
    return root


@pytest.fixture
def root(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(template, copy, symlinks=True)
    return copy


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root` (the .bzr internals too): its kind and content hash."""
    entries = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            entries[str(path)] = "link " + os.readlink(path)
        elif path.is_dir():
            entries[str(path)] = "dir"
        else:
            entries[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def obsolete_packs(root: Path) -> list[bytes]:
    names = os.listdir(root / "repo" / ".bzr" / "repository" / "obsolete_packs")
    return sorted({name.split(".")[0].encode() for name in names})


def hostile_requests(root: Path, few: bool = False) -> list[bytes]:
    """For every verb: paths and tokens with `../`, huge numbers, empty values, bodies."""
    tokens = [b"0" * 32 + b"/../../obsolete_packs/" + name for name in obsolete_packs(root)]
    bad_tokens = [*tokens, b"x"]  # resumes the real packs, then fails: Breezy aborts them
    huge = b"9" * 40
    sequences = [
        [b"", bad_tokens] * 5,  # (lock token, write-group tokens), as check_write_group takes
        [b""] * 10,
        [b"../../../etc/passwd"] * 10,
        [huge] * 10,
        [bad_tokens] * 10,
        [b"-1"] * 10,
    ]
    paths = [b"repo/", b"repo/trunk/", b"../", b"repo/../../"]
    bodies = [None, b"0,%s\n-1,5\nsearch\n../x\x00y\n" % huge + b"\n".join(tokens)]
    arities = range(11)
    if few:
        sequences, paths, bodies, arities = sequences[:2], paths[:2], bodies[:1], range(7)
    arg_sets = {
        repr(args): args
        for args in ((p, *s[:n]) for p in paths for s in sequences for n in arities)
    }
    return [
        request(verb, *args, body=body)
        for verb in VERBS
        for args in [(), *arg_sets.values()]
        for body in bodies
    ]


# -- recording what a request writes outside the tree ---------------------------------------

_recording: list[tuple[str, str]] | None = None
_inside = "/nowhere/"
_hook_installed = False
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _audit(event: str, args: tuple) -> None:
    if _recording is None:
        return
    if event in ("tempfile.mkstemp", "tempfile.mkdtemp"):
        _recording.append((event, str(args[0])))
    elif event == "open" and isinstance(args[0], str | bytes):
        path, mode, flags = os.fsdecode(args[0]), args[1] or "", args[2] or 0
        writes = any(c in mode for c in "wax+") or flags & _WRITE_FLAGS
        if writes and not os.path.abspath(path).startswith(_inside):
            _recording.append((event, path))


@pytest.fixture
def writes_outside(root: Path, tmp_path: Path, monkeypatch) -> Iterator[Callable[[], list]]:
    """What was created or opened for writing outside `root` (a temporary file too)."""
    global _recording, _inside, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(lockdir, "_DEFAULT_TIMEOUT_SECONDS", 0)
    events: list[tuple[str, str]] = []
    _recording, _inside = events, str(root) + os.sep
    try:
        yield lambda: [
            *events,
            *(("left in the temporary directory", p.name) for p in temp.iterdir()),
        ]
    finally:
        _recording = None


def app_for_root(root: Path, mode: str) -> SmartApp:
    return SmartApp(SmartServerEnviron(str(root), "/bzr/", mode, REALM))


def leaks(reply: Reply, root: Path) -> list[str]:
    """Server paths a reply shows: the root, its URL form, a chroot server's URL."""
    data = bytes(reply.data)
    needles = [str(root), urllib.parse.quote(str(root)), "chroot-"]
    return [n for n in needles if n.encode() in data]


# -- every verb, hostile arguments -----------------------------------------------------------


def test_no_anonymous_request_changes_the_tree_or_writes_outside_it(root, writes_outside):
    """Anonymous requests of a writable tree: only listed verbs, and those read-only."""
    app = app_for_root(root, READ_WRITE)
    before = snapshot(root)
    statuses: set[str] = set()
    for message in hostile_requests(root):
        reply = serve(app, message)
        statuses.add(reply.status)
        assert not leaks(reply, root), (message[:200], bytes(reply.data[:300]))
    assert snapshot(root) == before
    assert writes_outside() == []
    assert statuses == {"200 OK", "401 Unauthorized"}


def test_anonymous_check_write_group_cannot_delete_packs(root):
    """Tagged `read` by Breezy: it resumed packs named by `../` tokens, then deleted them."""
    name = obsolete_packs(root)[0]
    tokens = [b"0" * 32 + b"/../../obsolete_packs/" + name, b"x"]
    before = snapshot(root)
    reply = serve(
        app_for_root(root, READ_WRITE),
        request(b"Repository.check_write_group", b"repo/", b"", tokens),
    )
    assert reply.status == "401 Unauthorized"
    assert snapshot(root) == before


def test_no_authenticated_request_writes_to_a_read_only_tree_or_outside_it(root, writes_outside):
    """Users of a read-only tree may send any verb: the read-only transport holds."""
    app = app_for_root(root, READ_ONLY)
    before = snapshot(root)
    for message in hostile_requests(root, few=True):
        reply = serve(app, message, user="alice")
        assert reply.status == "200 OK"
        assert not leaks(reply, root), (message[:200], bytes(reply.data[:300]))
    assert snapshot(root) == before
    assert writes_outside() == []


def test_no_authenticated_reply_shows_a_server_path(root, writes_outside):
    app = app_for_root(root, READ_WRITE)
    for message in hostile_requests(root, few=True):
        reply = serve(app, message, user="alice")
        assert not leaks(reply, root), (message[:200], bytes(reply.data[:300]))
    assert writes_outside() == []


def test_a_missing_branch_is_named_from_the_top_of_the_tree(root):
    reply = serve(app_for_root(root, READ_WRITE), request(b"Branch.get_config_file", b"no/such/"))
    status, args, _ = smart_reply(bytes(reply.data))
    assert status == b"E" and b"/no/such/" in b" ".join(args), args
    assert not leaks(reply, root)


# -- verbs nobody gets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [request(b"Repository.tarball", b"repo/", b"bz2"), request(b"get_bundle", b"repo/", b"x")],
    ids=["tarball", "get_bundle"],
)
def test_tarballs_and_bundles_are_unknown_to_everyone(root, writes_outside, message):
    app = app_for_root(root, READ_WRITE)
    assert serve(app, message).status == "401 Unauthorized"
    status, args, _ = smart_reply(bytes(serve(app, message, user="alice").data))
    assert status == b"E" and args[0] == b"UnknownMethod"
    assert writes_outside() == []


# -- request caps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "user", "limit"),
    [
        (b"Repository.get_rev_id_for_revno", None, ANONYMOUS_BODY_LIMIT),
        (b"Repository.iter_files_bytes", None, KEY_LIST_BODY_LIMIT),
        (b"put", "alice", AUTHENTICATED_BODY_LIMIT),
        (b"Repository.get_parent_map", "alice", AUTHENTICATED_BODY_LIMIT),
    ],
)
def test_a_request_over_its_cap_is_refused_before_its_body_is_read(root, verb, user, limit):
    before = snapshot(root)
    head = request(verb, b"repo/trunk/victim", b"", end=False)
    stream = Input(head + b"b" + b"\0" * (HEAD_BYTES * 2))
    reply = serve(app_for_root(root, READ_WRITE), head, user=user, length=limit + 1, stream=stream)
    assert reply.status.startswith("413")
    text = bytes(reply.data).decode()
    assert text.count("\n") == 1 and "request over" in text
    assert stream.taken <= HEAD_BYTES
    assert snapshot(root) == before


def test_a_request_within_its_cap_is_served(root):
    keys = b"\n".join(b"file-id-%d\x00rev-%d" % (n, n) for n in range(20000))  # ~500 KiB
    assert ANONYMOUS_BODY_LIMIT < len(keys) < KEY_LIST_BODY_LIMIT
    reply = serve(
        app_for_root(root, READ_WRITE),
        request(b"Repository.iter_files_bytes", b"repo/", body=keys),
    )
    assert reply.status == "200 OK"


def test_a_push_stream_has_no_cap(root):
    """insert_stream is refused for its content (junk here), never for its size."""
    part = b"\0" * (1024 * 1024)
    message = request(b"Repository.insert_stream_1.19", b"repo/", b"", body=part, end=False)
    parts = AUTHENTICATED_BODY_LIMIT // len(part) + 1
    message += (b"b" + struct.pack("!L", len(part)) + part) * parts + b"e"
    stream = Input(message)
    reply = serve(app_for_root(root, READ_WRITE), message, user="alice", stream=stream)
    status, args, _ = smart_reply(bytes(reply.data))
    assert status == b"E" and reply.status == "200 OK", args
    assert stream.taken == len(message) > AUTHENTICATED_BODY_LIMIT
    assert not (root / "repo" / ".bzr" / "repository" / "lock" / "held").exists()


# -- big files: get and readv in bounded memory ----------------------------------------------

BIG = 150 * 1024 * 1024


@pytest.fixture
def big_file(root: Path) -> Path:
    path = root / "big.bin"
    with path.open("wb") as f:
        f.truncate(BIG)  # sparse: costs no disk
    return path


@pytest.mark.parametrize(
    "message",
    [request(b"get", b"big.bin"), request(b"readv", b"big.bin", body=b"0,%d" % BIG)],
    ids=["get", "readv"],
)
def test_a_big_file_is_streamed_not_held(root, big_file, message):
    app = app_for_root(root, READ_WRITE)
    tracemalloc.start()
    try:
        reply = serve(app, message)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reply.status == "200 OK"
    assert reply.size > BIG
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


def test_old_protocols_get_whole_bodies_up_to_a_limit(root, big_file):
    app = app_for_root(root, READ_WRITE)
    (root / "small").write_bytes(b"tiny content")
    reply = serve(app, b"bzr request 2\nget\x01small\n")
    assert bytes(reply.data) == b"bzr response 2\nsuccess\nok\n12\ntiny contentdone\n"
    refused = bytes(serve(app, b"bzr request 2\nget\x01big.bin\n").data)
    assert refused.startswith(b"bzr response 2\nfailed\n") and b"protocol 3" in refused
    assert str(WHOLE_BODY_LIMIT).encode() in refused


def test_readv_of_ranges_past_the_end_fails_up_front(root):
    (root / "small").write_bytes(b"0123456789")
    app = app_for_root(root, READ_WRITE)
    status, args, body = smart_reply(
        bytes(serve(app, request(b"readv", b"small", body=b"2,3\n8,5")).data)
    )
    assert (status, args[0], body) == (b"E", b"ShortReadvError", b"")
    status, args, body = smart_reply(
        bytes(serve(app, request(b"readv", b"small", body=b"2,3\n8,2")).data)
    )
    assert (status, args, body) == (b"S", (b"readv",), b"23489")


# -- a push whose client goes away -----------------------------------------------------------


def inserter_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_inserter_thread" in t.name]


def unstick_inserters() -> None:
    """End inserter threads left waiting (so that a failing test still ends)."""
    for insert in gc.get_objects():
        thread = (
            getattr(insert, "insert_thread", None)
            if isinstance(insert, BoundedInsertQueue)
            else None
        )
        if thread is not None and thread.is_alive():
            with insert.queue.mutex:
                insert.queue.queue.clear()
            insert.queue.put_nowait(StopIteration)


@pytest.mark.parametrize("fail_at_end", [False, True], ids=["short body", "read error"])
def test_an_abandoned_push_ends_its_inserter_and_releases_the_lock(root, fail_at_end):
    app = app_for_root(root, READ_WRITE)
    before = set(inserter_threads())
    message = request(
        b"Repository.insert_stream_1.19", b"repo/", b"", body=b"Bazaar pack format 1", end=False
    )
    stream = Input(message, fail_at_end=fail_at_end)
    try:
        reply = serve(app, message, user="alice", length=len(message) + 1000, stream=stream)
        assert reply.status == "200 OK"
        deadline = time.monotonic() + 10
        while set(inserter_threads()) - before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not set(inserter_threads()) - before, "the inserter thread waits for ever"
    finally:
        unstick_inserters()
    assert not (root / "repo" / ".bzr" / "repository" / "lock" / "held").exists()
    assert os.listdir(root / "repo" / ".bzr" / "repository" / "upload") == []
