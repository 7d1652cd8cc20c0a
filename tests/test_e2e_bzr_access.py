"""End to end: who may read and write, whose files they become, what stays out of reach.

All against the real image: Apache's Basic auth in front, our smart server
behind it, the real brz client (with authentication.conf, as users have it).
"""

from __future__ import annotations

import base64
import http.client
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import new_stack
from stack import ADMIN, Brz, Stack, run, side_container, smart_request, write_credentials

pytestmark = pytest.mark.e2e


def make_branch(brz: Brz, path: Path, text: str = "one\n") -> Path:
    brz("init", str(path))
    (path / "file").write_text(text)
    brz("add", cwd=path)
    brz("commit", "-m", "first", cwd=path)
    return path


def raw(
    stack: Stack, method: str, path: str, body: bytes | None = None, auth: str | None = None
) -> tuple[int, bytes]:
    """One request with the path sent exactly as given (no client normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    conn.putheader("Content-Length", str(len(body or b"")))
    if auth:
        conn.putheader("Authorization", auth)
    conn.endheaders(body)
    response = conn.getresponse()
    return response.status, response.read()


# -- one URL, reads and writes -------------------------------------------------------


def test_access_model_on_one_url(stack: Stack, brz: Brz, anonymous_brz: Brz, tmp_path: Path):
    url = stack.bzr_url("access/trunk")
    local = make_branch(brz, tmp_path / "local")
    brz("push", "--create-prefix", url, cwd=local)

    # Anonymous pull works.
    copy = tmp_path / "copy"
    anonymous_brz("branch", url, str(copy))
    assert (copy / "file").read_text() == "one\n"

    # Anonymous push is asked for a password (brz prompts) and refused without one.
    (copy / "file").write_text("anonymous change\n")
    anonymous_brz("commit", "-m", "anonymous", cwd=copy)
    refused = anonymous_brz("push", url, cwd=copy, check=False)
    assert refused.returncode != 0
    assert "Realm: 'trac-breezy'" in refused.stderr or "401" in refused.stderr, refused.stderr
    assert brz.revno(url) == 1

    # A wrong password is refused. (brz sends credentials only once asked, so
    # reads with a wrong password are checked with a raw request below.)
    wrong = Brz(tmp_path / "wrong")
    write_credentials(wrong, stack.port, ADMIN[0], "not the password")
    refused = wrong("push", url, cwd=copy, check=False)
    assert refused.returncode != 0 and "401" in refused.stderr, refused.stderr
    assert brz.revno(url) == 1
    bad = "Basic " + base64.b64encode(f"{ADMIN[0]}:wrong".encode()).decode()
    good = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()
    hello = smart_request(b"hello")
    assert raw(stack, "POST", "/bzr/access/trunk/.bzr/smart", hello, bad)[0] == 401
    assert raw(stack, "GET", "/bzr/access/trunk/.bzr/branch-format", None, bad)[0] == 401
    assert raw(stack, "POST", "/bzr/access/trunk/.bzr/smart", hello, good)[0] == 200

    # The right password pushes, to the same URL.
    right = Brz(tmp_path / "right")
    write_credentials(right, stack.port, *ADMIN)
    right("push", url, cwd=copy)
    assert brz.revno(url) == 2


def test_anonymous_clients_cannot_change_anything_through_raw_vfs_verbs(stack: Stack):
    stack.exec(
        "sh", "-c", "mkdir -p /srv/bzr/vfs && echo original > /srv/bzr/vfs/victim", user="www-data"
    )
    for verb, args in [
        (b"put", (b"vfs/victim", b"")),
        (b"put_non_atomic", (b"vfs/victim", b"", b"F", b"", b"")),
        (b"append", (b"vfs/victim", b"")),
        (b"mkdir", (b"vfs/new", b"")),
        (b"rename", (b"vfs/victim", b"vfs/renamed")),
        (b"move", (b"vfs/victim", b"vfs/moved")),
        (b"delete", (b"vfs/victim",)),
        (b"rmdir", (b"vfs",)),
        (b"Branch.lock_write", (b"vfs/", b"", b"")),
        (b"Made.up.verb", (b"vfs/",)),
    ]:
        status, _ = raw(stack, "POST", "/bzr/.bzr/smart", smart_request(verb, *args))
        assert status == 401, verb
    listing = stack.exec("sh", "-c", "ls /srv/bzr/vfs; cat /srv/bzr/vfs/victim").stdout.split()
    assert listing == ["victim", "original"]


def test_admin_command_manages_users(stack: Stack, tmp_path: Path):
    stack.compose(
        "exec",
        "-T",
        "web",
        "trac-breezy-user",
        "add",
        "bob",
        "--password-stdin",
        input="bob's password\n",
    )
    assert "bob" in stack.exec("trac-breezy-user", "list").stdout.split()
    bob = Brz(tmp_path / "bob")
    write_credentials(bob, stack.port, "bob", "bob's password")
    local = make_branch(bob, tmp_path / "bob-branch")
    bob("push", stack.bzr_url("bobs"), cwd=local)

    stack.exec("trac-breezy-user", "remove", "bob")
    assert "bob" not in stack.exec("trac-breezy-user", "list").stdout.split()
    (local / "file").write_text("two\n")
    bob("commit", "-m", "two", cwd=local)
    refused = bob("push", stack.bzr_url("bobs"), cwd=local, check=False)
    assert refused.returncode != 0 and "401" in refused.stderr, refused.stderr
    # The file stays readable by the unprivileged Apache, and by nobody else.
    mode = stack.exec("stat", "-c", "%U %a", "/var/lib/trac-breezy/htpasswd").stdout.split()
    assert mode == ["www-data", "640"]


def test_no_reads_without_a_password_when_anonymous_reads_are_off(image: str, tmp_path: Path):
    """Also with a URL path whose "." Apache's regular expressions once read as
    any character: /codeXbzr/... reached the files without a password."""
    stack = new_stack(
        image,
        "private",
        BZR_ANONYMOUS_READ="false",
        BZR_URL_PATH="/code.bzr",
        ADMIN_USER=ADMIN[0],
        ADMIN_PASSWORD=ADMIN[1],
    )
    try:
        stack.up()
        member = Brz(tmp_path / "member")
        write_credentials(member, stack.port, *ADMIN)
        local = make_branch(member, tmp_path / "local")
        member("push", stack.bzr_url("private"), cwd=local)
        stranger = Brz(tmp_path / "stranger")
        refused = stranger("log", stack.bzr_url("private"), check=False)
        assert refused.returncode != 0 and "401" in refused.stderr, refused.stderr
        assert stack.get("/code.bzr/private/.bzr/branch-format")[0] == 401
        for other in ("/codeXbzr/private/.bzr/branch-format", "/codeXbzr/", "/code-bzr/private/"):
            assert stack.get(other)[0] in (401, 404), other
        assert "first" in member("log", stack.bzr_url("private")).stdout
    finally:
        stack.compose("down", "-v", check=False)


# -- ownership: mounted trees belong to someone ---------------------------------------


def run_on(image: str, mounts: dict[Path, str], *extra: str) -> tuple[str, int]:
    name, side = side_container(
        image,
        {"ADMIN_USER": ADMIN[0], "ADMIN_PASSWORD": ADMIN[1]},
        {str(host): inside for host, inside in mounts.items()},
        *extra,
    )
    return name, side.port


def wait_until_serving(name: str, port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if run(["docker", "exec", name, "trac-breezy-healthcheck"], check=False).returncode == 0:
            return
        time.sleep(0.5)
    logs = run(["docker", "logs", name], check=False)
    pytest.fail(f"{name} did not serve:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")


def owned_dir(path: Path, uid: int, gid: int) -> Path:
    path.mkdir(parents=True)
    os.chown(path, uid, gid)
    return path


@pytest.mark.parametrize("how", ["detected from the mount", "compose user:"])
def test_pushes_are_owned_like_the_mounted_tree(image: str, tmp_path: Path, how: str):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory owned by another uid")
    uid, gid = 1234, 2345
    tree = owned_dir(tmp_path / "tree", uid, gid)
    (tree / "existing").write_text("keep me\n")
    os.chown(tree / "existing", uid, gid)
    mounts = {tree: "/srv/bzr"}
    extra: tuple[str, ...] = ()
    if how == "compose user:":
        mounts[owned_dir(tmp_path / "auth", uid, gid)] = "/var/lib/trac-breezy"
        extra = ("--user", f"{uid}:{gid}")
    name, port = run_on(image, mounts, *extra)
    try:
        wait_until_serving(name, port)
        brz = Brz(tmp_path / "home")
        write_credentials(brz, port, *ADMIN)
        local = make_branch(brz, tmp_path / "local")
        brz("push", f"bzr+http://127.0.0.1:{port}/bzr/pushed", cwd=local)
        owners = {(p.stat().st_uid, p.stat().st_gid) for p in (tree / "pushed").rglob("*")}
        assert owners == {(uid, gid)}
        assert (tree / "existing").stat().st_uid == uid  # nothing was re-owned
        assert (tree / "existing").read_text() == "keep me\n"
    finally:
        run(["docker", "rm", "-f", name], check=False)


# -- nothing outside the root ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/bzr/../etc/passwd",
        "/bzr/%2e%2e/%2e%2e/etc/passwd",
        "/bzr/%2E%2E/%2E%2E/etc/passwd",
        "/bzr/..%2f..%2fetc/passwd",
        "/bzr/%2f%2fetc/passwd",
        "/bzr//etc/passwd",
        "/bzr/./../../etc/passwd",
        "/bzr/escape-link/passwd",
    ],
)
def test_plain_http_stays_inside_the_root(stack: Stack, path: str):
    stack.exec("ln", "-sfn", "/etc", "/srv/bzr/escape-link", user="www-data")
    status, body = raw(stack, "GET", path)
    assert status in (400, 403, 404), (status, body[:200])
    assert b"root:x:0:0" not in body


@pytest.mark.parametrize(
    "path",
    [
        "/bzr/../.bzr/smart",
        "/bzr/%2e%2e/.bzr/smart",
        "/bzr/..%2f/.bzr/smart",
        "/bzr//.bzr/smart",
        "/bzr/escape-link/.bzr/smart",
    ],
)
def test_smart_urls_stay_inside_the_root(stack: Stack, path: str):
    stack.exec("ln", "-sfn", "/etc", "/srv/bzr/escape-link", user="www-data")
    status, body = raw(stack, "POST", path, smart_request(b"get", b"passwd"))
    assert b"root:x:0:0" not in body
    assert status in (200, 400, 403, 404)


@pytest.mark.parametrize(
    "client_path",
    [
        b"../../etc/passwd",
        b"/../../etc/passwd",
        b"%2e%2e/%2e%2e/etc/passwd",
        b"escape-link/passwd",
        b"/etc/passwd",
    ],
)
def test_smart_protocol_paths_stay_inside_the_root(stack: Stack, client_path: bytes):
    stack.exec("ln", "-sfn", "/etc", "/srv/bzr/escape-link", user="www-data")
    status, body = raw(stack, "POST", "/bzr/.bzr/smart", smart_request(b"get", client_path))
    assert status == 200
    assert b"root:x:0:0" not in body
    assert b"/srv/bzr" not in body  # errors name no server path


def test_symlinked_branch_outside_the_root_cannot_be_branched(
    stack: Stack, brz: Brz, tmp_path: Path
):
    stack.exec(
        "sh",
        "-c",
        "mkdir -p /tmp/outside && brz init -q /tmp/outside/b && "
        "ln -sfn /tmp/outside/b /srv/bzr/outside-link",
        user="www-data",
    )
    result = brz("branch", stack.bzr_url("outside-link"), str(tmp_path / "x"), check=False)
    assert result.returncode != 0 and "Not a branch" in result.stderr, result.stderr
    assert "/tmp/outside" not in result.stderr


# -- two pushes at once ---------------------------------------------------------------------


def test_concurrent_pushes_one_wins_one_gets_a_lock_error(stack: Stack, brz: Brz, tmp_path: Path):
    url = stack.bzr_url("race")
    base = make_branch(brz, tmp_path / "base")
    brz("push", url, cwd=base)

    big = tmp_path / "big"
    brz("branch", str(base), str(big))
    for i in range(12):
        (big / f"blob{i}").write_bytes(os.urandom(4 * 1024 * 1024))
        brz("add", cwd=big)
        brz("commit", "-m", f"big {i}", cwd=big)
    small = tmp_path / "small"
    brz("branch", str(base), str(small))
    (small / "file").write_text("small change\n")
    brz("commit", "-m", "small", cwd=small)

    first = subprocess.Popen(
        [brz.brz, "push", url],
        cwd=big,
        env=brz.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = "/srv/bzr/race/.bzr/branch/lock/held"
    deadline = time.monotonic() + 60
    while stack.exec("test", "-e", lock, check=False).returncode != 0:
        assert time.monotonic() < deadline and first.poll() is None, (
            "the first push never took the lock"
        )
        time.sleep(0.05)
    second = brz("push", url, cwd=small, check=False)
    _, first_err = first.communicate(timeout=300)

    assert first.returncode == 0, first_err
    assert second.returncode != 0
    assert "lock" in second.stderr.lower(), second.stderr
    assert brz.revno(url) == 13
    check = stack.exec("brz", "check", "/srv/bzr/race", user="www-data")
    assert "error" not in (check.stdout + check.stderr).lower(), check.stdout + check.stderr


# -- the client plugin, downloaded from the container ------------------------------------


def test_the_client_plugin_streams_a_push_through_apache(stack: Stack, tmp_path: Path):
    """The plugin the README says to install: fetched from the container, it
    sends a push's data chunked through Apache (WSGIChunkedRequest), and the
    branch lands whole."""
    from histories import make_history

    home = tmp_path / "plugin-home"
    pusher = Brz(home)
    write_credentials(pusher, stack.port, *ADMIN)
    status, headers, source = stack.get("/client/trac_breezy_streaming.py")
    assert status == 200 and headers["Content-Type"].startswith("text/x-python")
    plugins = pusher.config_dir / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "trac_breezy_streaming.py").write_text(source)
    pusher.env["BRZ_PLUGIN_PATH"] = "+user:-site"  # the user's plugin folder, as installed
    assert "trac_breezy_streaming" in pusher("plugins").stdout
    local = make_history(
        tmp_path / "local", revisions=20, files=10, seed=5, blobs_per_rev=3, blob_kb=200
    )
    pusher("push", stack.bzr_url("streamed/trunk"), "--create-prefix", cwd=local)
    assert "streaming a smart request" in (home / "brz.log").read_text()
    assert pusher.revno(stack.bzr_url("streamed/trunk")) == 20
    checked = stack.exec("brz", "check", "/srv/bzr/streamed/trunk", user="www-data", check=False)
    assert checked.returncode == 0, checked.stderr
