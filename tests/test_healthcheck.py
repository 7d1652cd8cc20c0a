"""The healthcheck's requests carry the start's token: Apache leaves them out
of the access log by it (and lets the smart-server check past private reads)."""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Iterator

import pytest

from trac_breezy.startup import healthcheck


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []  # noqa: RUF012 - one server per test

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("X-Trac-Breezy-Health")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    Recorder.seen = []
    served = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served
    served.shutdown()
    served.server_close()


def test_the_trac_check_sends_the_token(server, tmp_path, monkeypatch):
    token = tmp_path / "health-token"
    token.write_text("0123abcd\n")
    monkeypatch.setattr(healthcheck, "HEALTH_TOKEN_FILE", token)
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    assert healthcheck.check_trac(conn, "/trac") is None
    assert Recorder.seen == [("/trac/", "0123abcd")]


def test_no_token_before_the_first_start(tmp_path, monkeypatch):
    monkeypatch.setattr(healthcheck, "HEALTH_TOKEN_FILE", tmp_path / "missing")
    assert healthcheck.health_headers() == {}
