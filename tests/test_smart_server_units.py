"""Units of `trac_breezy.smart_server`, driven directly (no HTTP server, no brz).

What the package promises that the brz-client tests cannot see: it never
imports Trac, a large response really is streamed (and a small one is not),
the insert queue of a push is bounded, and one app is built per configuration.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from smart_harness import smart_reply
from stack import ROOT, Brz, smart_request

from trac_breezy.setenv import READ_ONLY, READ_WRITE, REALM, SmartServerEnviron
from trac_breezy.smart_server import overrides
from trac_breezy.smart_server.access import ANONYMOUS_BODY_LIMIT
from trac_breezy.smart_server.app import SmartApp, app_for, application
from trac_breezy.smart_server.overrides import INSERT_QUEUE_CHUNKS, BoundedInsertQueue
from trac_breezy.smart_server.responses import (
    CHUNKED_REQUESTS_HEADER,
    RESPONSE_BUFFER,
    ResponseWriter,
)

IMPORT_ALL = """
import importlib, pkgutil, sys
import trac_breezy.smart_server as package
names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in names:
    importlib.import_module(name)
print(" ".join(names))
print(" ".join(m for m in sys.modules if m == "trac" or m.startswith("trac.")))
"""


def test_the_smart_server_never_imports_trac():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, cwd=ROOT, check=True
    )
    imported, trac_modules = result.stdout.splitlines()
    assert "trac_breezy.smart_server.app" in imported.split()
    assert "trac_breezy.smart_server.tip_changes" in imported.split()
    assert trac_modules == ""


# -- responses: small ones whole, large ones streamed -------------------------------


class Recorder:
    """start_response and its write callable, recording what the app sends."""

    def __init__(self, events: list | None = None) -> None:
        self.events = [] if events is None else events
        self.headers: dict[str, str] = {}
        self.writes: list[bytes] = []

    def __call__(self, status: str, headers: list[tuple[str, str]]):
        self.status, self.headers = status, dict(headers)
        return self.write

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.events.append("write")


def test_response_writer_sends_a_small_response_whole():
    sent = Recorder()
    writer = ResponseWriter(sent)
    writer.write(b"abc")
    writer.write(b"def")
    assert writer.finish() == [b"abcdef"]
    assert sent.headers["Content-Length"] == "6"
    assert sent.writes == []


def test_response_writer_streams_a_large_response_as_it_is_produced():
    sent = Recorder()
    writer = ResponseWriter(sent)
    piece = b"x" * (RESPONSE_BUFFER // 4)
    for _ in range(3):
        writer.write(piece)
    assert sent.writes == []  # still buffering, nothing started
    writer.write(piece)
    assert sent.writes == [piece * 4]  # sent before the producer is done
    writer.write(b"tail")
    assert writer.finish() == []
    assert sent.writes == [piece * 4, b"tail"]
    assert "Content-Length" not in sent.headers


def serve(
    app: SmartApp, request: bytes, start_response: Recorder, chunked: bool = False
) -> list[bytes]:
    """`request` as mod_wsgi hands it over: with its length, or chunked (none)."""
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/bzr/.bzr/smart",
        "PATH_INFO": "",
        "wsgi.input": io.BytesIO(request),
    }
    if not chunked:
        environ["CONTENT_LENGTH"] = str(len(request))
    return list(app(environ, start_response))


@pytest.fixture
def app(tmp_path: Path) -> SmartApp:
    return SmartApp(SmartServerEnviron(str(tmp_path), "/bzr/", READ_ONLY, REALM))


def test_smart_app_streams_a_large_response_before_breezy_is_done(app, tmp_path, monkeypatch):
    from breezy.bzr.smart import protocol

    blob = bytes(range(256)) * (3 * RESPONSE_BUFFER // 256)
    (tmp_path / "blob").write_bytes(blob)
    events: list[str] = []
    end = protocol.ProtocolThreeResponder._write_end

    def end_spy(self):
        events.append("breezy done")
        end(self)

    monkeypatch.setattr(protocol.ProtocolThreeResponder, "_write_end", end_spy)
    sent = Recorder(events)
    assert serve(app, smart_request(b"get", b"blob"), sent) == []
    assert sent.status == "200 OK" and "Content-Length" not in sent.headers
    assert events[0] == "write" and "breezy done" in events
    assert len(sent.writes) >= 2
    assert smart_reply(b"".join(sent.writes)) == (b"S", (b"ok",), blob)


def test_smart_app_sends_a_small_response_with_its_length(app, tmp_path):
    (tmp_path / "small").write_bytes(b"tiny content")
    sent = Recorder()
    body = serve(app, smart_request(b"get", b"small"), sent)
    assert sent.writes == [] and len(body) == 1
    assert sent.headers["Content-Length"] == str(len(body[0]))
    assert b"tiny content" in body[0]


@pytest.mark.parametrize(
    ("request_bytes", "reply"),
    [
        (smart_request(b"put", b"x", b""), None),  # protocol 3: see smart_reply below
        (b"bzr request 2\nput\x01x\x01\n", b"bzr response 2\nfailed\nReadOnlyError\n"),
        (b"put\x01x\x01\n", b"ReadOnlyError\n"),
    ],
    ids=["protocol 3", "protocol 2", "protocol 1"],
)
def test_a_read_only_tree_answers_an_anonymous_write_in_its_protocol(app, request_bytes, reply):
    sent = Recorder()
    body = b"".join(serve(app, request_bytes, sent))
    assert sent.status == "200 OK"
    if reply is None:
        assert smart_reply(body) == (b"E", (b"ReadOnlyError",), b"")
    else:
        assert body == reply


def test_get_of_a_directory_fails_as_in_breezy(app, tmp_path):
    (tmp_path / "folder").mkdir()
    body = b"".join(serve(app, smart_request(b"get", b"folder"), Recorder()))
    status, args, _ = smart_reply(body)
    assert status == b"E" and args[0] == b"ReadError"
    assert str(tmp_path).encode() not in body


def test_an_invalid_content_length_is_a_bad_request(app):
    sent = Recorder()
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/bzr/.bzr/smart",
        "CONTENT_LENGTH": "-5",
        "wsgi.input": io.BytesIO(b""),
    }
    assert app(environ, sent) == [b"invalid Content-Length\n"]
    assert sent.status == "400 Bad Request"


# -- request bodies sent chunked (no Content-Length) ---------------------------------


def test_a_body_without_a_length_is_read_to_its_end(app, tmp_path):
    """With WSGIChunkedRequest On, mod_wsgi passes a chunked body with no
    CONTENT_LENGTH: it was once taken as empty."""
    (tmp_path / "small").write_bytes(b"tiny content")
    sent = Recorder()
    body = b"".join(serve(app, smart_request(b"get", b"small"), sent, chunked=True))
    assert smart_reply(body) == (b"S", (b"ok",), b"tiny content")
    # Every smart reply tells the client plugin it may stream its requests.
    assert sent.headers[CHUNKED_REQUESTS_HEADER] == "accepted"


def test_a_capped_body_without_a_length_is_read_no_further_than_its_cap(app):
    blob = b"x" * (4 * ANONYMOUS_BODY_LIMIT)  # a body part after the arguments
    request = smart_request(b"get", b"small")[:-1] + b"b" + struct.pack("!L", len(blob)) + blob
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/bzr/.bzr/smart",
        "wsgi.input": io.BytesIO(request),
    }
    sent = Recorder()
    answer = b"".join(app(environ, sent))
    assert sent.status.startswith("413") and b"anonymous" in answer
    assert environ["wsgi.input"].tell() <= ANONYMOUS_BODY_LIMIT + 1


# -- the insert queue of a push is bounded -----------------------------------------------


class StalledInserter(BoundedInsertQueue):
    """An insert_stream whose inserter thread consumes nothing until released."""

    def __init__(self, alive: bool) -> None:
        self.release = threading.Event()
        if not alive:
            self.release.set()
        self.do_insert_stream_request(repository=None, resume_tokens=b"")

    def _inserter_thread(self) -> None:
        self.release.wait(30)


def chunk_in_thread(insert: BoundedInsertQueue, chunk: bytes) -> threading.Thread:
    thread = threading.Thread(target=insert.do_chunk, args=(chunk,), daemon=True)
    thread.start()
    return thread


def test_insert_queue_waits_for_room_while_the_inserter_lives(monkeypatch):
    monkeypatch.setattr(overrides, "INSERT_QUEUE_POLL", 0.05)
    insert = StalledInserter(alive=True)
    try:
        for n in range(INSERT_QUEUE_CHUNKS):
            insert.do_chunk(b"chunk %d" % n)  # room: returns at once
        blocked = chunk_in_thread(insert, b"one too many")
        blocked.join(0.5)
        assert blocked.is_alive(), "do_chunk returned although the queue was full"
        assert insert.queue.get_nowait() == b"chunk 0"
        blocked.join(5)
        assert not blocked.is_alive()
        assert list(insert.queue.queue)[-1] == b"one too many"
    finally:
        insert.release.set()


def test_insert_queue_drops_the_rest_of_a_push_once_the_inserter_died():
    """Neither held in memory nor waited for (do_end reports the inserter's error)."""
    insert = StalledInserter(alive=False)
    assert insert.insert_thread is not None
    insert.insert_thread.join(5)
    started = time.monotonic()
    for n in range(3 * INSERT_QUEUE_CHUNKS):
        insert.do_chunk(b"chunk %d" % n)
    assert time.monotonic() - started < overrides.INSERT_QUEUE_POLL
    assert insert.queue.qsize() == 0


def test_the_end_of_a_push_fits_a_full_queue():
    """Breezy's do_end puts its end marker without a timeout: it must never block."""
    insert = StalledInserter(alive=True)
    try:
        for n in range(INSERT_QUEUE_CHUNKS):
            insert.do_chunk(b"chunk %d" % n)
        for marker in (StopIteration, overrides.ABANDONED):
            put = threading.Thread(target=insert.queue.put, args=(marker,), daemon=True)
            put.start()
            put.join(5)
            assert not put.is_alive(), "putting the end marker blocks"
        assert insert.queue.qsize() == INSERT_QUEUE_CHUNKS + 2
    finally:
        insert.release.set()


# -- one app per configuration -------------------------------------------------------------


def test_one_app_per_configuration(tmp_path):
    config = SmartServerEnviron(str(tmp_path), "/bzr/", READ_WRITE, REALM)
    app = app_for(config)
    assert app_for(config) is app
    assert app_for(SmartServerEnviron.from_environ(dict(config.setenv()))) is app
    read_only = app_for(replace(config, mode=READ_ONLY))
    assert read_only is not app
    assert app_for(replace(config, mode=READ_ONLY)) is read_only
    assert app_for(replace(config, prefix="/other/")) is not app


def test_misconfigured_requests_get_a_server_error():
    sent, errors = Recorder(), io.StringIO()
    environ = {"REQUEST_METHOD": "POST", "wsgi.errors": errors}
    assert application(environ, sent) == [b"smart server misconfigured\n"]
    assert sent.status == "500 Internal Server Error"
    assert "bzr_wsgi.root" in errors.getvalue()


def test_a_lock_held_by_a_dead_process_is_not_contention(tmp_path):
    """A daemon killed mid-push left the branch locked: the repeated push got
    LockContention until someone ran `brz break-lock`."""
    from breezy.branch import Branch

    from trac_breezy.smart_server.overrides import holder_is_dead

    brz = Brz(tmp_path / "home")
    brz("init", str(tmp_path / "b"))
    # The same user as this process: Breezy steals only its own user's locks.
    env = {**os.environ, "PYTHONPATH": ":".join(sys.path)}
    died_holding = (
        "import os, sys, breezy.bzr\n"
        "from breezy.branch import Branch\n"
        "Branch.open(sys.argv[1]).lock_write()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", died_holding, str(tmp_path / "b")], check=True, env=env)
    branch = Branch.open(str(tmp_path / "b"))
    assert branch.get_physical_lock_status() and holder_is_dead(branch)
    branch.lock_write()  # Breezy steals it, as the server now lets it
    branch.unlock()
    branch.lock_write()  # held by this live process now
    try:
        assert not holder_is_dead(Branch.open(str(tmp_path / "b")))
    finally:
        branch.unlock()
