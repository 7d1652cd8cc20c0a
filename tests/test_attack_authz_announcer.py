"""Attack: the push announcer opened the pushed branch with Breezy's plain `Branch.open`.

`tip_changes.TipChange.new_revisions` runs in the announcer's thread (no
jail, no access rules) and followed whatever the branch's
`.bzr/branch/branch.conf` says, which any user who may write the branch can
`put`. The smart server's Branch verbs open branches with
`ignore_fallbacks=True`, so a branch stacked on `http://anywhere/` still
takes a tip change: the server then connected wherever the pusher said
(SSRF), or read any branch on its disk by a `file:///` URL. Found by review
(with or without AUTHZ_FILE); the announcer now opens the branch as Trac
does (`trac_app.bzr.confinement.open_branch`, inside the tree).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from smart_harness import Server, local_branch, post_smart, smart_reply
from stack import Brz, smart_request

from trac_breezy.setenv import READ_WRITE
from trac_breezy.smart_server import tip_changes
from trac_breezy.smart_server.tip_changes import on_tip_change
from trac_breezy.trac_app import push_announcer

RULES = "[/]\n* =\n\n[/beta]\nbob = rw\n"


class Listener:
    """A TCP port on 127.0.0.1 that notes what connects to it."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.socket.settimeout(0.5)
        self.port = self.socket.getsockname()[1]
        self.requests: list[bytes] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    self.requests.append(connection.recv(4096))
                    connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop = True
        self.thread.join(5)
        self.socket.close()


def bob_stacks_beta_and_moves_its_tip(server: Server, stacked_on: str, tip: list[bytes]) -> None:
    """bob, who may write /beta, says it is stacked on `stacked_on` (a `put` of its
    branch.conf) and sets its tip to `tip` with the Branch verbs, which still take it."""

    def bob(verb: bytes, *args: bytes, body: bytes | None = None):
        status, reply = post_smart(server, "beta/", smart_request(verb, *args, body=body), "bob")
        assert status == 200
        return smart_reply(reply)

    conf = f"stacked_on_location = {stacked_on}\n".encode()
    assert bob(b"put", b".bzr/branch/branch.conf", b"", body=conf)[0] == b"S"
    status, (_, branch_token, repo_token), _ = bob(b"Branch.lock_write", b"")
    assert status == b"S"
    reply = bob(b"Branch.set_last_revision_info", b"", branch_token, repo_token, *tip)
    assert reply[0] == b"S", reply
    bob(b"Branch.unlock", b"", branch_token, repo_token)
    push_announcer.wait_for_announcements()


def test_a_pusher_makes_the_server_connect_where_he_says(tmp_path: Path, monkeypatch) -> None:
    from test_push_announcer import new_trac_env
    from trac.versioncontrol.api import DbRepositoryProvider

    import trac_breezy.trac_app.bzr.connector  # noqa: F401 - registers the bzr connector

    monkeypatch.setattr(tip_changes, "_listeners", [])
    on_tip_change(push_announcer.announce)  # as wsgi/bzr.wsgi does
    root, trac_parent, authz_file = tmp_path / "bzr", tmp_path / "trac", tmp_path / "authz"
    root.mkdir()
    trac_parent.mkdir()
    authz_file.write_text(RULES)
    local_branch(Brz(tmp_path / "maker"), root / "beta", "beta\n")
    tip = (root / "beta" / ".bzr" / "branch" / "last-revision").read_bytes().split()
    env = new_trac_env(trac_parent / "proj")
    DbRepositoryProvider(env).add_repository("", str(root / "beta"), "bzr")
    env.shutdown()
    listener = Listener()
    server = Server(root, READ_WRITE, trac_parent, authz_file=authz_file)
    try:
        # bob says /beta is stacked on a host of his choosing, then moves its tip
        # (here: to where it was).
        url = f"http://127.0.0.1:{listener.port}/internal/"
        bob_stacks_beta_and_moves_its_tip(server, url, tip)
    finally:
        server.stop()
        listener.stop()
    # The announcer opens the branch as Trac does (trac_app.bzr.confinement):
    # a stacked-on URL outside the tree is refused, never connected to.
    assert listener.requests == []


def test_a_pusher_cannot_announce_a_branch_he_may_not_read(tmp_path: Path, monkeypatch) -> None:
    """Issue 19, finding 2: stacked on a branch bob may not read, inside the tree.

    bob stacks /beta on /alpha/trunk (`file:` URL, inside the tree) and sets
    his tip to alpha's: the announcer would open beta with alpha as its
    fallback and hand alpha's revisions (messages, authors: the commit
    ticket updater writes them into tickets) to beta's Trac project.
    """
    from test_push_announcer import new_trac_env
    from trac.versioncontrol.api import DbRepositoryProvider

    import trac_breezy.trac_app.bzr.connector as connector

    announced: list[list[str]] = []
    monkeypatch.setattr(
        connector, "notify_new_revisions", lambda env, name, revs: announced.append(revs) or []
    )
    monkeypatch.setattr(tip_changes, "_listeners", [])
    on_tip_change(push_announcer.announce)
    root, trac_parent, authz_file = tmp_path / "bzr", tmp_path / "trac", tmp_path / "authz"
    root.mkdir()
    trac_parent.mkdir()
    authz_file.write_text(RULES)
    maker = Brz(tmp_path / "maker")
    (root / "alpha").mkdir()
    local_branch(maker, root / "alpha" / "trunk", "alpha secret\n")
    local_branch(maker, root / "beta", "beta\n")
    alpha_tip = (root / "alpha" / "trunk" / ".bzr" / "branch" / "last-revision").read_bytes()
    env = new_trac_env(trac_parent / "proj")
    DbRepositoryProvider(env).add_repository("", str(root / "beta"), "bzr")
    env.shutdown()
    server = Server(root, READ_WRITE, trac_parent, authz_file=authz_file)
    try:
        alpha = (root / "alpha" / "trunk").as_uri()
        bob_stacks_beta_and_moves_its_tip(server, alpha, alpha_tip.split())
    finally:
        server.stop()
    alpha_revid = "revid:" + alpha_tip.split()[1].decode()
    assert not any(alpha_revid in revs for revs in announced), announced
