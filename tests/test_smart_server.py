"""The smart-server app with the real brz client, without Apache.

A small threaded WSGI server stands in for Apache: it sets what `SetEnv` and
mod_wsgi would (`bzr_wsgi.*`, SCRIPT_NAME) and checks Basic auth like
mod_auth_basic with anonymous reads allowed (credentials that are sent are
always checked). The same app runs under Apache in the end-to-end tests.
"""

from __future__ import annotations

import base64
import os
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from stack import Brz, smart_request

from trac_breezy import push_hook, smart_server

USERS = {"alice": "wonderland"}


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def apache_like(root: Path, mode: str, trac_parent: Path | None = None):
    """What Apache does before mod_wsgi calls bzr.wsgi: routing, SetEnv, auth."""

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if not path.startswith("/bzr/") or not path.endswith("/.bzr/smart"):
            start_response("404 Not Found", [])
            return [b""]
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = path, ""
        environ["bzr_wsgi.root"] = str(root)
        environ["bzr_wsgi.prefix"] = "/bzr/"
        environ["bzr_wsgi.mode"] = mode
        if trac_parent:
            environ["bzr_wsgi.trac_env_parent_dir"] = str(trac_parent)
        header = environ.get("HTTP_AUTHORIZATION")
        if header:
            user, _, password = base64.b64decode(header.split()[1]).decode().partition(":")
            if USERS.get(user) != password:
                start_response(
                    "401 Unauthorized", [("WWW-Authenticate", 'Basic realm="trac-breezy"')]
                )
                return [b"wrong credentials\n"]
            environ["REMOTE_USER"] = user
        return smart_server.application(environ, start_response)

    return app


class Server:
    def __init__(self, root: Path, mode: str, trac_parent: Path | None = None) -> None:
        self.root = root
        self.httpd = make_server(
            "127.0.0.1", 0, apache_like(root, mode, trac_parent), ThreadingWSGIServer, QuietHandler
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"bzr+http://127.0.0.1:{self.httpd.server_port}/bzr/{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "root"
    root.mkdir()
    served = Server(root, smart_server.READ_WRITE)
    yield served
    served.stop()


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


# -- classifying requests ----------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "verb"),
    [
        (smart_request(b"BzrDir.open_2.1", b"trunk/"), b"BzrDir.open_2.1"),
        (smart_request(b"put", b"x", b""), b"put"),
        (b"bzr request 2\nhello\n", b"hello"),
        (b"mkdir\x01x\x01\n", b"mkdir"),
        (b"bzr message 3 (bzr 1.6)\n\x00\x00", None),
        (b"", None),
        (b"garbage without newline", None),
    ],
)
def test_request_verb(head, verb):
    assert smart_server.request_verb(head) == verb


@pytest.mark.parametrize("verb", [b"get", b"readv", b"stat", b"BzrDir.open_2.1", b"hello"])
def test_reads(verb):
    assert smart_server.is_read(verb)


@pytest.mark.parametrize(
    "verb",
    [
        b"put",
        b"mkdir",
        b"rename",
        b"delete",
        b"append",
        b"move",
        b"rmdir",
        b"Branch.lock_write",
        b"Repository.insert_stream_1.19",
        b"Branch.set_last_revision_info",
        b"Branch.break_lock",
        b"No.such.verb",
        None,
    ],
)
def test_everything_else_is_a_write(verb):
    assert not smart_server.is_read(verb)


@pytest.mark.parametrize(
    ("script_name", "relpath"),
    [
        ("/bzr/.bzr/smart", ""),
        ("/bzr/repo/trunk/.bzr/smart", "repo/trunk/"),
        ("/bzr/my repo/caf\xc3\xa9/.bzr/smart", "my%20repo/caf%C3%A9/"),
        ("/bzr/a/../b/.bzr/smart", None),
        ("/bzr/a//b/.bzr/smart", None),
        ("/bzr/./a/.bzr/smart", None),
        ("/other/.bzr/smart", None),
        ("/bzr/a/.bzr/smartx", None),
    ],
)
def test_client_relpath(script_name, relpath):
    assert smart_server.client_relpath({"SCRIPT_NAME": script_name}, "/bzr/") == relpath


# -- access: one URL for reads and writes ---------------------------------------------


def test_anonymous_reads_and_authenticated_writes_share_one_url(server, tmp_path):
    brz = Brz(tmp_path / "home")
    local = local_branch(brz, tmp_path / "local")

    anonymous = brz("push", server.url("trunk"), cwd=local, check=False)
    assert anonymous.returncode != 0
    assert not (server.root / "trunk").exists()

    with_credentials(brz, server, "alice", "wrong")
    wrong = brz("push", server.url("trunk"), cwd=local, check=False)
    assert wrong.returncode != 0
    assert not (server.root / "trunk").exists()

    with_credentials(brz, server, "alice", "wonderland")
    brz("push", server.url("trunk"), cwd=local)
    assert (server.root / "trunk" / ".bzr").is_dir()

    reader = Brz(tmp_path / "reader")  # no credentials at all
    copy = tmp_path / "copy"
    reader("branch", server.url("trunk"), str(copy))
    assert (copy / "file").read_text() == "one\n"


def test_anonymous_client_can_change_nothing_through_vfs_verbs(server, tmp_path):
    """Raw smart requests, as a hostile client would send them."""
    import http.client

    (server.root / "victim").write_text("original")
    for verb, args in [
        (b"put", (b"victim", b"")),
        (b"mkdir", (b"newdir", b"")),
        (b"rename", (b"victim", b"renamed")),
        (b"delete", (b"victim",)),
        (b"append", (b"victim", b"")),
        (b"rmdir", (b"victim",)),
        (b"move", (b"victim", b"moved")),
    ]:
        conn = http.client.HTTPConnection("127.0.0.1", server.httpd.server_port, timeout=10)
        conn.request("POST", "/bzr/.bzr/smart", body=smart_request(verb, *args))
        response = conn.getresponse()
        response.read()
        assert response.status == 401, verb
        assert response.getheader("WWW-Authenticate") == 'Basic realm="trac-breezy"'
    assert sorted(p.name for p in server.root.iterdir()) == ["victim"]
    assert (server.root / "victim").read_text() == "original"


def test_read_only_mode_refuses_writes_even_with_credentials(tmp_path):
    root = tmp_path / "ro-root"
    root.mkdir()
    server = Server(root, smart_server.READ_ONLY)
    try:
        brz = Brz(tmp_path / "home")
        with_credentials(brz, server, "alice", "wonderland")
        local = local_branch(brz, tmp_path / "local")
        refused = brz("push", server.url("trunk"), cwd=local, check=False)
        assert refused.returncode != 0
        assert list(root.iterdir()) == []
    finally:
        server.stop()


# -- what the stock app gets wrong ---------------------------------------------------------


def test_remote_init_and_server_to_server_branch(server, tmp_path):
    brz = Brz(tmp_path / "home")
    with_credentials(brz, server, "alice", "wonderland")
    brz("init", server.url("fresh"))
    assert (server.root / "fresh" / ".bzr" / "branch").is_dir()

    brz("init-shared-repo", server.url("repo"))
    local = local_branch(brz, tmp_path / "local")
    brz("push", server.url("repo/trunk"), cwd=local)
    brz("branch", server.url("repo/trunk"), server.url("repo/feature"))
    assert brz.revno(server.url("repo/feature")) == 1
    brz("branch", server.url("repo/trunk"), server.url("standalone-copy"))
    assert brz.revno(server.url("standalone-copy")) == 1

    # An existing branch is not silently re-initialised.
    again = brz("init", server.url("fresh"), check=False)
    assert again.returncode != 0


def test_symlink_out_of_the_root_is_not_followed(server, tmp_path):
    brz = Brz(tmp_path / "home")
    outside = local_branch(brz, tmp_path / "outside", "secret\n")
    os.symlink(outside, server.root / "linked")
    result = brz("cat", server.url("linked/file"), check=False)
    assert result.returncode != 0
    assert "secret" not in result.stdout
    result = brz("branch", server.url("linked"), str(tmp_path / "stolen"), check=False)
    assert result.returncode != 0
    assert not (tmp_path / "stolen" / "file").exists()


def test_errors_do_not_reveal_server_paths(server, tmp_path):
    brz = Brz(tmp_path / "home")
    result = brz("branch", server.url("no/such/branch"), str(tmp_path / "x"), check=False)
    assert result.returncode != 0
    assert str(server.root) not in result.stderr
    assert urllib.parse.quote(str(server.root)) not in result.stderr


def test_large_responses_are_streamed(server, tmp_path):
    brz = Brz(tmp_path / "home")
    with_credentials(brz, server, "alice", "wonderland")
    local = local_branch(brz, tmp_path / "big", "x" * 10)
    (local / "blob").write_bytes(os.urandom(3 * smart_server.RESPONSE_BUFFER))
    brz("add", cwd=local)
    brz("commit", "-m", "blob", cwd=local)
    brz("push", server.url("big"), cwd=local)
    copy = tmp_path / "big-copy"
    Brz(tmp_path / "reader")("branch", server.url("big"), str(copy))
    assert (copy / "blob").read_bytes() == (local / "blob").read_bytes()


# -- pushes update Trac --------------------------------------------------------------------


def test_push_announces_revisions_to_trac(tmp_path):
    from trac.env import Environment
    from trac.ticket.model import Ticket
    from trac.versioncontrol.api import DbRepositoryProvider

    import trac_breezy.bzr_backend  # noqa: F401 - registers the bzr connector (the image uses the entry point)

    root, trac_parent = tmp_path / "bzr", tmp_path / "trac"
    root.mkdir()
    trac_parent.mkdir()
    env = Environment(
        str(trac_parent / "proj"),
        create=True,
        options=[
            ("components", "trac_breezy.*", "enabled"),
            ("components", "tracopt.ticket.commit_updater.*", "enabled"),
        ],
    )
    ticket = Ticket(env)
    ticket.populate({"summary": "crash", "reporter": "someone", "status": "new"})
    ticket_id = ticket.insert()
    other = Ticket(env)
    other.populate({"summary": "referenced", "reporter": "someone", "status": "new"})
    other_id = other.insert()

    brz = Brz(tmp_path / "home")
    brz("init-shared-repo", str(root / "proj"))
    DbRepositoryProvider(env).add_repository("", str(root / "proj"), "bzr")
    env.shutdown()

    server = Server(root, smart_server.READ_WRITE, trac_parent)
    try:
        with_credentials(brz, server, "alice", "wonderland")
        local = local_branch(brz, tmp_path / "local")
        brz("push", server.url("proj/trunk"), cwd=local)
        (local / "file").write_text("fixed\n")
        brz("commit", "-m", f"Fix the crash, fixes #{ticket_id}", cwd=local)
        (local / "file").write_text("more\n")
        brz("commit", "-m", f"Follow-up, refs #{other_id}", cwd=local)
        brz("push", cwd=local)
        push_hook.wait_for_announcements()
    finally:
        server.stop()

    env = Environment(str(trac_parent / "proj"))
    fixed, referenced = Ticket(env, ticket_id), Ticket(env, other_id)
    assert fixed["status"] == "closed" and fixed["resolution"] == "fixed"
    assert referenced["status"] == "new"
    assert any("Follow-up" in str(change[4]) for change in referenced.get_changelog())
    comments = [str(c[4]) for c in fixed.get_changelog() if c[2] == "comment"]
    assert any("changeset:" in c and "Fix the crash" in c for c in comments), comments
