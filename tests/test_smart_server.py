"""The smart-server app with the real brz client, without Apache (see `smart_harness`).

The units of the `trac_breezy.smart_server` package are tested in
`test_smart_server_units.py`, its tip-change hook in `test_tip_changes.py`.
"""

from __future__ import annotations

import os
import tarfile
import urllib.parse
from pathlib import Path

import pytest
from smart_harness import Server, local_branch, with_credentials
from stack import Brz, smart_request

from trac_breezy.setenv import READ_ONLY
from trac_breezy.smart_server.access import (
    ANONYMOUS_DONE_BY_CLIENT,
    ANONYMOUS_VERBS,
    Refusal,
    refusal,
)
from trac_breezy.smart_server.app import client_relpath
from trac_breezy.smart_server.responses import RESPONSE_BUFFER
from trac_breezy.smart_server.verbs import request_verb

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
        # A structure that is a dict, not a list: no verb (was a 500 and a traceback).
        (b"bzr message 3 (bzr 1.6)\n\x00\x00\x00\x02des\x00\x00\x00\x0ad3:get1:xe", None),
    ],
)
def test_request_verb(head, verb):
    assert request_verb(head) == verb


@pytest.mark.parametrize("verb", sorted(ANONYMOUS_VERBS))
def test_anonymous_clients_get_the_listed_verbs(verb):
    assert refusal(verb, anonymous=True, read_only=False) is None
    assert refusal(verb, anonymous=True, read_only=True) is None


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
        # Tagged `read` by Breezy, yet they write (or copy the repository to /tmp).
        b"Repository.check_write_group",
        b"Repository.tarball",
        b"get_bundle",
        b"Transport.is_readonly",
        b"No.such.verb",
        None,
    ],
)
def test_anonymous_clients_need_a_user_for_everything_else(verb):
    assert refusal(verb, anonymous=True, read_only=False) is Refusal.NEEDS_USER
    assert refusal(verb, anonymous=False, read_only=False) is None


def test_a_read_only_tree_answers_anonymous_writes_with_its_error():
    assert refusal(b"Branch.lock_write", anonymous=True, read_only=True) is Refusal.READ_ONLY
    assert refusal(b"put", anonymous=True, read_only=True) is Refusal.READ_ONLY
    # A read that is not listed: a password lifts the refusal.
    assert refusal(b"Repository.check_write_group", anonymous=True, read_only=True) is (
        Refusal.NEEDS_USER
    )
    assert refusal(b"Branch.lock_write", anonymous=False, read_only=True) is None


def test_reads_the_client_can_do_itself_are_not_offered_to_anonymous_clients():
    for read_only in (False, True):
        assert refusal(b"Repository.revision_archive", anonymous=True, read_only=read_only) is (
            Refusal.NOT_OFFERED
        )
    assert refusal(b"Repository.revision_archive", anonymous=False, read_only=False) is None


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
    assert client_relpath({"SCRIPT_NAME": script_name}, "/bzr/") == relpath


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


def published_history(server: Server, brz: Brz, tmp_path: Path) -> str:
    """repo/trunk in a shared repository: three revisions, a tag, a file in a folder."""
    with_credentials(brz, server, "alice", "wonderland")
    local = local_branch(brz, tmp_path / "published")
    (local / "sub").mkdir()
    (local / "sub" / "f2").write_text("a\nb\n")
    brz("add", cwd=local)
    brz("commit", "-m", "two", cwd=local)
    brz("tag", "v1", cwd=local)
    brz("init-shared-repo", server.url("repo"))
    brz("push", server.url("repo/trunk"), cwd=local)
    brz("commit", "-m", "three", "--unchanged", cwd=local)
    brz("push", server.url("repo/trunk"), cwd=local)
    return server.url("repo/trunk")


def test_stock_reads_need_only_the_verbs_anonymous_clients_get(server, tmp_path):
    """How access.ANONYMOUS_VERBS was found, and stays complete: stock brz reads,
    anonymously, each succeeding, with no request refused."""
    url = published_history(server, Brz(tmp_path / "admin"), tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    reader = Brz(tmp_path / "reader")
    commands = [
        (["branch", url, str(out / "b")], None),
        (["branch", "-r1", url, str(out / "b1")], None),
        (["pull", url], out / "b1"),
        (["checkout", url, str(out / "co")], None),
        (["update"], out / "co"),
        (["checkout", "--lightweight", url, str(out / "light")], None),
        (["log", "-v", "-n0", url], None),
        (["log", url + "/file"], None),
        (["cat", url + "/sub/f2"], None),
        (["info", "-v", url], None),
        (["annotate", url + "/file"], None),
        (["tags", "-d", url], None),
        (["revno", url], None),
        (["ls", "-R", "-d", url], None),
        (["export", str(out / "export"), url], None),
        # The server's archive is not offered to them: brz builds it from plain reads.
        (["export", str(out / "export.tar"), url], None),
        (["check", url], None),
        (["branches", server.url("repo")], None),
    ]
    server.seen.clear()
    for args, cwd in commands:
        reader(*args, cwd=cwd)
    assert (out / "light" / "sub" / "f2").read_text() == "a\nb\n"
    assert {user for _, _, user in server.seen} == {None}
    refused = {(verb, status) for verb, status, _ in server.seen if status != "200"}
    assert refused == set()
    assert {verb for verb, _, _ in server.seen} <= ANONYMOUS_VERBS | ANONYMOUS_DONE_BY_CLIENT
    with tarfile.open(out / "export.tar") as archive:
        assert archive.extractfile("export/sub/f2").read() == b"a\nb\n"


def test_anonymous_push_to_a_read_only_tree_gets_the_read_only_error(tmp_path):
    """Not asked for a password, which would not help."""
    root = tmp_path / "ro-root"
    root.mkdir()
    server = Server(root, READ_ONLY)
    try:
        brz = Brz(tmp_path / "home")
        local = local_branch(brz, tmp_path / "local")
        refused = brz("push", server.url("trunk"), cwd=local, check=False)
        assert refused.returncode != 0
        assert "readonly transport" in refused.stderr.lower(), refused.stderr
        assert "Realm" not in refused.stderr and "401" not in refused.stderr
        refused = brz("init-shared-repo", server.url("new-repo"), check=False)
        assert refused.returncode != 0 and "readonly transport" in refused.stderr, refused.stderr
        assert list(root.iterdir()) == []
        assert {status for _, status, _ in server.seen} == {"200"}
    finally:
        server.stop()


def test_read_only_mode_refuses_writes_even_with_credentials(tmp_path):
    root = tmp_path / "ro-root"
    root.mkdir()
    server = Server(root, READ_ONLY)
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
    assert "FileExists" in again.stderr, again.stderr[-2000:]


def test_symlink_out_of_the_root_is_not_followed(server, tmp_path):
    brz = Brz(tmp_path / "home")
    outside = local_branch(brz, tmp_path / "outside", "secret\n")
    os.symlink(outside, server.root / "linked")
    result = brz("cat", server.url("linked/file"), check=False)
    assert result.returncode != 0 and "Not a branch" in result.stderr, result.stderr
    assert "secret" not in result.stdout
    result = brz("branch", server.url("linked"), str(tmp_path / "stolen"), check=False)
    assert result.returncode != 0 and "Not a branch" in result.stderr, result.stderr
    assert not (tmp_path / "stolen" / "file").exists()


def test_errors_do_not_reveal_server_paths(server, tmp_path):
    brz = Brz(tmp_path / "home")
    result = brz("branch", server.url("no/such/branch"), str(tmp_path / "x"), check=False)
    assert result.returncode != 0 and "Not a branch" in result.stderr, result.stderr
    assert str(server.root) not in result.stderr
    assert urllib.parse.quote(str(server.root)) not in result.stderr


def test_large_responses_are_streamed(server, tmp_path):
    """A branch bigger than RESPONSE_BUFFER round-trips through brz (that it is
    really streamed is checked in test_smart_server_units.py)."""
    brz = Brz(tmp_path / "home")
    with_credentials(brz, server, "alice", "wonderland")
    local = local_branch(brz, tmp_path / "big", "x" * 10)
    (local / "blob").write_bytes(os.urandom(3 * RESPONSE_BUFFER))
    brz("add", cwd=local)
    brz("commit", "-m", "blob", cwd=local)
    brz("push", server.url("big"), cwd=local)
    copy = tmp_path / "big-copy"
    Brz(tmp_path / "reader")("branch", server.url("big"), str(copy))
    assert (copy / "blob").read_bytes() == (local / "blob").read_bytes()
