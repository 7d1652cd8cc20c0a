"""End to end: brz and plain http:// reads obey the rule file (AUTHZ_FILE) through Apache.

The real container, the rule file mounted as compose.yaml mounts secrets:
alice writes /alpha and reads /beta, bob writes /beta only, anonymous reads
/public only. Checked with the real brz (branch, push, a checkout's commit,
a branch from one place of the server to another), with raw smart requests
whose VFS paths climb out of their URL, with plain GETs of the tree's files,
and after the file is edited on the host (no restart). The in-process tests
(tests/test_smart_server_authz.py) try more cases; this one proves Apache
routes every kind of request through the rules.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import running_stack
from smart_harness import smart_reply
from stack import ADMIN, Brz, Stack, mounted_rule_file, smart_request, write_credentials

pytestmark = pytest.mark.e2e

PASSWORDS = {"alice": "alice pw 1", "bob": "bob pw 2", ADMIN[0]: ADMIN[1]}
RULES = f"""\
[/]
* =
{ADMIN[0]} = rw

[/alpha]
alice = rw

[/beta]
alice = r
bob = rw

[/public]
* = r
{ADMIN[0]} = rw
"""


@pytest.fixture(scope="module")
def site(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    """The stack with the rule file, users alice and bob, and three pushed branches."""
    base = tmp_path_factory.mktemp("authz-bzr")
    mount, rules = mounted_rule_file(base, RULES)
    env = {
        **mount,
        "ADMIN_USER": ADMIN[0],
        "ADMIN_PASSWORD": ADMIN[1],
    }
    with running_stack(image, "authzbzr", **env) as stack:
        for user in ("alice", "bob"):
            stack.exec("trac-breezy-user", "add", user, "--password-stdin", input=PASSWORDS[user])
        admin = user_brz(stack, base, ADMIN[0])
        admin("init-shared-repo", stack.bzr_url("alpha"))
        for place in ("alpha/trunk", "beta", "public"):
            work = base / "work" / place.replace("/", "-")
            work.parent.mkdir(exist_ok=True)
            admin("init", str(work))
            (work / "file").write_text(f"{place}\n")
            admin("add", cwd=work)
            admin("commit", "-m", place, cwd=work)
            admin("push", stack.bzr_url(place), cwd=work)
        yield stack, rules


def user_brz(stack: Stack, base: Path, user: str | None) -> Brz:
    brz = Brz(base / f"home-{user or 'anonymous'}")
    if user:
        write_credentials(brz, stack.port, user, PASSWORDS[user])
    return brz


def fails(brz: Brz, *args: str, cwd: Path | None = None) -> str:
    result = brz(*args, cwd=cwd, check=False)
    assert result.returncode != 0, f"brz {' '.join(args)} succeeded"
    return result.stderr


def test_brz_reads_and_writes_only_where_the_rules_say(site, tmp_path: Path) -> None:
    stack, _ = site
    anonymous, alice, bob = (user_brz(stack, tmp_path, u) for u in (None, "alice", "bob"))
    anonymous("branch", stack.bzr_url("public"), str(tmp_path / "anon-public"))
    error = fails(anonymous, "branch", stack.bzr_url("alpha/trunk"), str(tmp_path / "anon-alpha"))
    assert "username:" in error  # brz was asked for a password
    work = tmp_path / "alice-beta"
    alice("branch", stack.bzr_url("beta"), str(work))
    (work / "file").write_text("alice's change\n")
    alice("commit", "-m", "alice's change", cwd=work)
    assert "may read but not write here" in fails(alice, "push", stack.bzr_url("beta"), cwd=work)
    alice("push", stack.bzr_url("alpha/from-beta"), cwd=work)
    assert "Not a branch" in fails(
        bob, "branch", stack.bzr_url("alpha/trunk"), str(tmp_path / "bob-alpha")
    )
    checkout = tmp_path / "bob-checkout"
    bob("checkout", stack.bzr_url("beta"), str(checkout))
    (checkout / "file").write_text("bob's change\n")
    bob("commit", "-m", "bob's change", cwd=checkout)
    assert bob.revno(stack.bzr_url("beta")) == 2
    fails(bob, "branch", stack.bzr_url("beta"), stack.bzr_url("alpha/from-bob"))
    alice("branch", stack.bzr_url("beta"), stack.bzr_url("alpha/copy-of-beta"))
    assert alice.revno(stack.bzr_url("alpha/copy-of-beta")) == 2


def request(stack: Stack, path: str, user: str | None, body: bytes | None = None):
    headers = {}
    if user:
        token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    req = urllib.request.Request(stack.url(path), data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_vfs_paths_climbing_out_of_their_url_are_judged_where_they_land(site) -> None:
    stack, _ = site
    get = smart_request(b"get", b"../alpha/trunk/.bzr/branch/last-revision")
    status, reply = request(stack, "/bzr/beta/.bzr/smart", "alice", get)
    assert status == 200 and smart_reply(reply)[0] == b"S"
    status, reply = request(stack, "/bzr/beta/.bzr/smart", "bob", get)
    assert status == 200 and smart_reply(reply)[1][0] == b"NoSuchFile"
    put = smart_request(b"put", b"../alpha/trunk/planted", b"")
    status, reply = request(stack, "/bzr/public/.bzr/smart", "bob", put)
    assert status == 200 and smart_reply(reply)[0] == b"E"
    assert stack.exec("test", "-e", "/srv/bzr/alpha/trunk/planted", check=False).returncode == 1


def test_plain_reads_of_the_tree_obey_the_rules(site) -> None:
    stack, _ = site
    path = "/bzr/{}/.bzr/branch/last-revision"
    assert request(stack, path.format("public"), None)[0] == 200
    assert request(stack, path.format("alpha/trunk"), None)[0] == 401
    assert request(stack, path.format("alpha/trunk"), "bob")[0] == 404
    status, body = request(stack, path.format("alpha/trunk"), "alice")
    assert status == 200 and body.startswith(b"1 ")


def test_an_edit_of_the_file_takes_effect_without_a_restart(site, tmp_path: Path) -> None:
    stack, rules = site
    bob = user_brz(stack, tmp_path, "bob")
    fails(bob, "branch", stack.bzr_url("alpha/trunk"), str(tmp_path / "before"))
    try:
        rules.write_text(RULES.replace("alice = rw\n", "alice = rw\nbob = r\n", 1))
        os.utime(rules, ns=(rules.stat().st_mtime_ns + 10**9,) * 2)
        bob("branch", stack.bzr_url("alpha/trunk"), str(tmp_path / "after"))
    finally:
        rules.write_text(RULES)
        os.utime(rules, ns=(rules.stat().st_mtime_ns + 10**9,) * 2)
    fails(bob, "branch", stack.bzr_url("alpha/trunk"), str(tmp_path / "again"))
