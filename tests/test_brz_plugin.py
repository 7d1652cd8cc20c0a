"""The brz client plugin (trac_breezy/brz_plugin/trac_breezy_streaming.py).

With the real `brz` client, loaded by BRZ_PLUGINS_AT: a push to our smart
server behind the stand-in for Apache, over http and https, streams its
insert as a chunked body and lands whole; a server that does not accept
chunked bodies, and Breezy's stock WSGI app, get stock requests and the push
still lands; without the plugin nothing changes.

In-process, against a small HTTP server that notes what arrives when: the
body goes out while it is being produced (the server holds the first MiB
before the client has made the rest), from 16 KiB on, in ~16 KiB chunks; it streams only to a
server that said so and only with credentials that worked; a refused streamed
request is an error, not a silent retry.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import http.server
import importlib.util
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from histories import make_history
from smart_harness import USERS, Server, shipped_certificate, with_credentials
from stack import Brz

from trac_breezy.setenv import READ_WRITE
from trac_breezy.smart_server.responses import CHUNKED_REQUESTS_HEADER

PLUGIN = Path(__file__).resolve().parent.parent / "trac_breezy/brz_plugin/trac_breezy_streaming.py"
INSERT_VERBS = {b"Repository.insert_stream_1.19", b"Repository.insert_stream_locked"}
MIB = 1024 * 1024


# --- with the real brz client ---------------------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local branch of 50 revisions holding ~5 MB of incompressible data."""
    home = tmp_path_factory.mktemp("history-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        return make_history(
            tmp_path_factory.mktemp("history") / "local",
            revisions=50,
            files=20,
            seed=7,
            blobs_per_rev=1,
            blob_kb=100,
        )


def root(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


def client(home: Path, server: Server, plugin: bool = True) -> Brz:
    """brz with alice's password for `server`, and the plugin unless told otherwise."""
    brz = Brz(home)
    with_credentials(brz, server, "alice", USERS["alice"])
    if plugin:
        brz.env["BRZ_PLUGINS_AT"] = f"trac_breezy_streaming@{PLUGIN}"
    return brz


def pushed_whole(brz: Brz, local: Path, server: Server, name: str) -> None:
    """`local` pushed to `server` as `name`, and the copy on the server is sound and equal."""
    brz("push", server.url(name), cwd=local)
    remote = server.root / name
    brz("check", str(remote))
    tip = brz("revision-info", "-d", str(local)).stdout
    assert brz("revision-info", "-d", str(remote)).stdout == tip
    assert tip.split()[0] == "50"


def test_a_push_streams_its_insert_to_our_server(history, tmp_path):
    server = Server(root(tmp_path), READ_WRITE)
    try:
        brz = client(tmp_path / "home", server)
        pushed_whole(brz, history, server, "trunk")
        assert set(server.chunked) & INSERT_VERBS, server.chunked
        assert set(server.chunked) <= INSERT_VERBS, server.chunked
        assert {status for _, status, _ in server.seen} <= {"200", "401"}
        log = (tmp_path / "home" / "brz.log").read_text()
        assert "trac_breezy_streaming: streaming a smart request" in log
    finally:
        server.stop()


def test_a_push_over_https_streams_with_breezys_ssl_settings(history, tmp_path):
    server = Server(root(tmp_path), READ_WRITE, tls=True)
    try:
        brz = client(tmp_path / "home", server)
        (brz.config_dir / "breezy.conf").write_text(
            f"[DEFAULT]\nssl.ca_certs = {shipped_certificate('ca.crt')}\n"
        )
        pushed_whole(brz, history, server, "trunk")
        assert set(server.chunked) & INSERT_VERBS, server.chunked
    finally:
        server.stop()


def test_a_server_without_chunked_requests_gets_stock_ones(history, tmp_path):
    server = Server(root(tmp_path), READ_WRITE, accept_chunked=False)
    try:
        pushed_whole(client(tmp_path / "home", server), history, server, "trunk")
        assert server.chunked == []  # none sent, none refused with 411
    finally:
        server.stop()


def test_breezys_stock_wsgi_app_gets_stock_requests(history, tmp_path):
    server = Server(root(tmp_path), READ_WRITE, stock=True)
    try:
        pushed_whole(client(tmp_path / "home", server), history, server, "trunk")
        assert server.chunked == []
        assert any(user == "alice" for _, _, user in server.seen)  # credentials were in use
    finally:
        server.stop()


def test_a_push_without_the_plugin_still_works(history, tmp_path):
    server = Server(root(tmp_path), READ_WRITE)
    try:
        pushed_whole(client(tmp_path / "home", server, plugin=False), history, server, "trunk")
        assert server.chunked == []
    finally:
        server.stop()


def test_a_lightweight_checkout_commits_with_the_plugin(history, tmp_path):
    """Stock brz 3.3 sends a VFS `put` path as str over bzr+http and fails to commit in a
    lightweight checkout; the plugin sends bytes, and the commit lands on the server."""
    server = Server(root(tmp_path), READ_WRITE)
    try:
        for plugin in (False, True):
            brz = client(tmp_path / f"home-{plugin}", server, plugin=plugin)
            name = f"light-{plugin}"
            brz("push", server.url(name), cwd=history)
            checkout = tmp_path / f"checkout-{plugin}"
            brz("checkout", "--lightweight", server.url(name), str(checkout))
            (checkout / "new-file").write_text("from a lightweight checkout\n")
            brz("add", "new-file", cwd=checkout)
            committed = brz("commit", "-m", "light", cwd=checkout, check=False)
            if not plugin:  # the client bug this plugin works around
                assert committed.returncode != 0
                assert "mismatched lock context" in committed.stderr
                continue
            assert committed.returncode == 0, committed.stderr
            brz("check", str(server.root / name))
            assert brz("revno", str(server.root / name)).stdout.strip() == "51"
            assert brz("cat", "-d", server.url(name), "new-file").stdout.startswith("from a")
    finally:
        server.stop()


def test_the_plugin_loads_from_the_users_plugin_directory(tmp_path):
    brz = Brz(tmp_path / "home")
    brz.env["BRZ_PLUGIN_PATH"] = "+user:-site"  # the user's directory, not the site's
    plugins = brz.config_dir / "plugins"
    plugins.mkdir(parents=True)
    shutil.copy(PLUGIN, plugins / PLUGIN.name)
    listed = brz("plugins").stdout
    assert "trac_breezy_streaming 1.1.0" in listed
    assert "Send large bzr+http(s) smart requests" in listed


# --- in-process, against a server that notes what arrives ------------------


class Arrivals:
    """What the small server got, and how it answers."""

    def __init__(self) -> None:
        self.bodies: list[tuple[bool, str]] = []  # (came chunked, sha256) of each POST
        self.chunk_sizes: list[int] = []  # of the chunked bodies
        self.first_mib = threading.Event()  # set once 1 MiB of a chunked body arrived
        self.advertise = True  # answer with the chunked-requests header
        self.password = USERS["alice"]  # None: no authentication at all


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_POST(self) -> None:
        arrivals: Arrivals = self.server.arrivals  # type: ignore[attr-defined]
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        body = self._chunked_body(arrivals) if chunked else self._whole_body()
        if not self._authorized(arrivals):
            self._answer(401, b"who are you?\n", [("WWW-Authenticate", 'Basic realm="test"')])
            return
        digest = hashlib.sha256(body).hexdigest()
        arrivals.bodies.append((chunked, digest))
        header = [(CHUNKED_REQUESTS_HEADER, "accepted")] if arrivals.advertise else []
        self._answer(200, digest.encode(), header)

    def _authorized(self, arrivals: Arrivals) -> bool:
        if arrivals.password is None:
            return True
        expected = base64.b64encode(f"alice:{arrivals.password}".encode()).decode()
        return self.headers.get("Authorization") == f"Basic {expected}"

    def _whole_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _chunked_body(self, arrivals: Arrivals) -> bytes:
        parts: list[bytes] = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
            arrivals.chunk_sizes.append(size)
            if sum(map(len, parts)) >= MIB:
                arrivals.first_mib.set()
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        return b"".join(parts)

    def _answer(self, code: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(code)
        for name, value in [*headers, ("Content-Length", str(len(body)))]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def arrivals() -> Iterator[tuple[Arrivals, int]]:
    """The small server, running: what it got, and its port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.arrivals = Arrivals()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.arrivals, httpd.server_port  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[ModuleType]:
    """The plugin, loaded in this process and installed; removed afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(tmp_path / "home"))
        mp.delenv("BRZ_HOME", raising=False)
        import breezy

        if breezy.get_global_state() is None:
            breezy.initialize()
        spec = importlib.util.spec_from_file_location("trac_breezy_streaming_test", PLUGIN)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.install()
        yield module
        module.uninstall()


def http_transport(port: int):
    """Breezy's HTTP transport to the small server, with alice's password in its URL."""
    from breezy.transport import get_transport_from_url

    return get_transport_from_url(f"http://alice:{USERS['alice']}@127.0.0.1:{port}/bzr/x/")


def send(transport, parts: list[bytes], between=None) -> bytes:
    """One smart request of `parts` through `transport`'s medium; `between(i)` runs
    after part i is handed over. The answer's body (the body's sha256)."""
    request = transport.get_smart_medium().get_request()
    for i, part in enumerate(parts):
        request.accept_bytes(part)
        if between:
            between(i)
    request.finished_writing()
    answer = request.read_bytes(64)
    request.finished_reading()
    return answer


def sha(parts: list[bytes]) -> bytes:
    return hashlib.sha256(b"".join(parts)).hexdigest().encode()


def test_the_body_leaves_while_it_is_being_produced(plugin, arrivals):
    got, port = arrivals
    transport = http_transport(port)
    assert send(transport, [b"hello"]) == sha([b"hello"])  # 401, then 200 with credentials
    parts = [os.urandom(256 * 1024) for _ in range(12)]  # 3 MiB in 256 KiB parts
    seen_early: list[bool] = []

    def after(i: int) -> None:
        if i == 5:  # 1.5 MiB handed over, 1.5 MiB still to make
            seen_early.append(got.first_mib.wait(10))

    assert send(transport, parts, after) == sha(parts)
    assert seen_early == [True], "the server had nothing before the body was complete"
    assert got.bodies[-1] == (True, sha(parts).decode())
    # Each 256 KiB part goes at once: it is over STREAM_FROM_BYTES and CHUNK_BYTES.
    assert got.chunk_sizes == [MIB // 4] * 12


def test_small_requests_and_the_first_ones_go_whole(plugin, arrivals):
    got, port = arrivals
    transport = http_transport(port)
    big = [os.urandom(2 * MIB)]
    send(transport, big)  # the first request on this URL: no header seen yet
    send(transport, [b"x" * (plugin.STREAM_FROM_BYTES - 1)])  # under the streaming size
    assert [chunked for chunked, _ in got.bodies] == [False, False]
    send(transport, big)
    assert got.bodies[-1] == (True, sha(big).decode())


def test_no_streaming_where_the_server_did_not_say_so(plugin, arrivals):
    got, port = arrivals
    got.advertise = False
    transport = http_transport(port)
    for _ in range(3):
        send(transport, [os.urandom(2 * MIB)])
    assert not any(chunked for chunked, _ in got.bodies)


def test_no_streaming_without_credentials(plugin, arrivals):
    got, port = arrivals
    got.password = None  # nothing asks for a password: Breezy never sends one
    transport = http_transport(port)
    for _ in range(3):
        send(transport, [os.urandom(2 * MIB)])
    assert not any(chunked for chunked, _ in got.bodies)


def test_a_refused_streamed_request_is_an_error_not_a_silent_retry(plugin, arrivals):
    from breezy import errors

    got, port = arrivals
    transport = http_transport(port)
    send(transport, [b"hello"])
    got.password = "changed meanwhile"
    with pytest.raises(errors.UnexpectedHttpStatus) as refused:
        send(transport, [os.urandom(2 * MIB)])
    assert refused.value.code == 401
    assert "streamed (chunked) smart request" in str(refused.value)
    assert got.chunk_sizes == [2 * MIB]  # sent once, not again
    got.password = USERS["alice"]
    send(transport, [os.urandom(2 * MIB)])  # the next one goes whole (no header since)
    assert got.bodies[-1][0] is False


def test_an_unknown_breezy_is_left_alone(plugin, monkeypatch):
    import breezy
    from breezy.transport.http import urllib as http_module

    plugin.uninstall()
    monkeypatch.setattr(breezy, "version_info", (3, 4, 0, "final", 0))
    stock = http_module.SmartClientHTTPMedium.get_request
    assert plugin.install() is False
    assert http_module.SmartClientHTTPMedium.get_request is stock
    assert "3, 4, 0" in plugin.unexpected_breezy()


def test_the_plugin_stays_within_python_3_9():
    ast.parse(PLUGIN.read_text(), feature_version=(3, 9))
