"""Faults in the middle of a push: a killed daemon, a killed container, a stop.

Each leaves every branch consistent (`brz check`), loses nothing pushed
before, and needs no manual `brz break-lock`: the same push, repeated,
succeeds. Bounded: a push of ~48 MB takes seconds, every wait has a deadline.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import running_stack
from stack import ADMIN, Brz, Stack, write_credentials

from trac_breezy.startup.apache_runner import QUIET_SECONDS

pytestmark = pytest.mark.e2e

# kill -9 of every mod_wsgi daemon of the smart server (display-name (wsgi:bzr)).
KILL_SMART_SERVER_DAEMONS = """
import os, signal
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if cmdline.read().startswith(b"(wsgi:bzr)"):
                os.kill(int(pid), signal.SIGKILL)
                print(pid)
    except OSError:
        pass
"""


@pytest.fixture(scope="module")
def faulty(image: str) -> Iterator[Stack]:
    """A stack of its own: these tests kill and stop it."""
    with running_stack(image, "faults", ADMIN_USER=ADMIN[0], ADMIN_PASSWORD=ADMIN[1]) as stack:
        yield stack


@pytest.fixture
def pusher(faulty: Stack, tmp_path: Path) -> Brz:
    brz = Brz(tmp_path / "home")
    write_credentials(brz, faulty.port, *ADMIN)
    return brz


def one_revision(brz: Brz, path: Path) -> Path:
    brz("init", str(path))
    (path / "file").write_text("first\n")
    brz("add", cwd=path)
    brz("commit", "-m", "first", cwd=path)
    return path


def big_push(brz: Brz, url: str, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """Push one revision to `url`, then start pushing 12 more that take a few
    seconds (incompressible blobs) to that existing branch, as people do."""
    base = one_revision(brz, tmp_path / "base")
    brz("push", url, cwd=base)
    local = tmp_path / "local"
    brz("branch", str(base), str(local))
    for n in range(12):
        (local / f"blob{n}").write_bytes(os.urandom(4 * 1024 * 1024))
        brz("add", cwd=local)
        brz("commit", "-m", f"blob {n}", cwd=local)
    return start_push(brz, url, local), local


def start_push(brz: Brz, url: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [brz.brz, "push", url],
        cwd=cwd,
        env=brz.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_pushing(stack: Stack, push: subprocess.Popen, relpath: str) -> None:
    """Until the push holds its branch's lock on the server (it is half-way)."""
    lock = f"/srv/bzr/{relpath}/.bzr/branch/lock/held"
    deadline = time.monotonic() + 60
    while stack.exec("test", "-e", lock, check=False).returncode != 0:
        assert time.monotonic() < deadline and push.poll() is None, "the push never got going"
        time.sleep(0.05)


def seconds_until_serving(stack: Stack, limit: float) -> float:
    """How long until a smart `hello` is answered again."""
    started = time.monotonic()
    request = urllib.request.Request(
        stack.url("/bzr/.bzr/smart"),
        data=b"bzr request 2\nhello\n",
        headers={"Content-Type": "application/octet-stream"},
    )
    while time.monotonic() - started < limit:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the smart server did not answer within {limit} s")


def branch_is_sound(stack: Stack, relpath: str) -> None:
    check = stack.exec("brz", "check", f"/srv/bzr/{relpath}", user="www-data", check=False)
    said = check.stdout + check.stderr
    assert check.returncode == 0 and "error" not in said.lower(), said


def test_a_daemon_killed_mid_push(faulty: Stack, pusher: Brz, tmp_path: Path):
    before = one_revision(pusher, tmp_path / "before")
    pusher("push", faulty.bzr_url("killed-kept"), cwd=before)  # pushed before: must stay
    push, local = big_push(pusher, faulty.bzr_url("killed"), tmp_path)
    wait_until_pushing(faulty, push, "killed")
    killed = faulty.exec("python", "-c", KILL_SMART_SERVER_DAEMONS).stdout.split()
    assert len(killed) == 2, killed  # BZR_WSGI_PROCESSES
    push.communicate(timeout=120)
    assert push.returncode != 0  # the client saw the connection go
    assert seconds_until_serving(faulty, 30) < 5
    pusher("push", faulty.bzr_url("killed"), cwd=local)  # no break-lock needed
    assert pusher.revno(faulty.bzr_url("killed")) == 13
    branch_is_sound(faulty, "killed")
    assert pusher.revno(faulty.bzr_url("killed-kept")) == 1


def test_the_container_killed_mid_push(faulty: Stack, pusher: Brz, tmp_path: Path):
    before = one_revision(pusher, tmp_path / "before")
    pusher("push", faulty.bzr_url("dead-kept"), cwd=before)
    push, local = big_push(pusher, faulty.bzr_url("dead"), tmp_path)
    wait_until_pushing(faulty, push, "dead")
    faulty.compose("kill", "web")
    push.communicate(timeout=120)
    assert push.returncode != 0
    faulty.compose("start", "web")
    assert seconds_until_serving(faulty, 60) < 15
    pusher("push", faulty.bzr_url("dead"), cwd=local)  # the lock was broken at start
    assert pusher.revno(faulty.bzr_url("dead")) == 13
    branch_is_sound(faulty, "dead")
    assert pusher.revno(faulty.bzr_url("dead-kept")) == 1
    faulty.wait_healthy(60)


def test_a_stop_waits_for_the_push_in_flight(faulty: Stack, pusher: Brz, tmp_path: Path):
    push, _ = big_push(pusher, faulty.bzr_url("stopped"), tmp_path)
    wait_until_pushing(faulty, push, "stopped")
    faulty.compose("stop", "web")  # graceful: the push in flight may finish
    _, said = push.communicate(timeout=120)
    assert push.returncode == 0, said  # was "Connection lost while sending request"
    faulty.compose("start", "web")
    faulty.wait_healthy(90)
    assert pusher.revno(faulty.bzr_url("stopped")) == 13
    branch_is_sound(faulty, "stopped")


# -- issue 19, finding 12: a stop waits for the smart requests in flight, not only locks


def blobs(brz: Brz, local: Path, count: int = 12, size: int = 8 * 1024 * 1024) -> None:
    """`count` commits of one incompressible file of `size` bytes each (12 x 8 MB: ~96 MB)."""
    for n in range(count):
        (local / f"big{n}").write_bytes(os.urandom(size))
        brz("add", cwd=local)
        brz("commit", "-m", f"big {n}", cwd=local)


def wait_until_uploading(stack: Stack, push: subprocess.Popen, relpath: str) -> None:
    """Until the server writes the push's stream (a new pack in the repository's upload/)."""
    upload = f"/srv/bzr/{relpath}/.bzr/repository/upload"
    deadline = time.monotonic() + 120
    while stack.exec("sh", "-c", f'ls "{upload}" | grep -q .', check=False).returncode != 0:
        assert time.monotonic() < deadline and push.poll() is None, "the push never got going"
        time.sleep(0.05)


def timed_stop(stack: Stack) -> float:
    """Seconds `docker stop -t 30` takes (as in issue 19)."""
    started = time.monotonic()
    subprocess.run(["docker", "stop", "-t", "30", stack.container_id()], check=True, timeout=60)
    return time.monotonic() - started


@pytest.mark.parametrize("kind", ["new branch", "incremental"])
def test_a_stop_waits_for_a_push_whose_stream_is_arriving(
    faulty: Stack, pusher: Brz, tmp_path: Path, kind: str
) -> None:
    relpath = f"arriving-{kind.split()[0]}"
    local = one_revision(pusher, tmp_path / "local")
    if kind == "incremental":
        pusher("push", faulty.bzr_url(relpath), cwd=local)
    blobs(pusher, local)
    push = start_push(pusher, faulty.bzr_url(relpath), local)
    try:
        wait_until_uploading(faulty, push, relpath)
        seconds = timed_stop(faulty)
        _, said = push.communicate(timeout=120)
    finally:
        push.kill()
        faulty.compose("start", "web")
        faulty.wait_healthy(90)
    print(f"{kind}: the stop took {seconds:.1f} s")
    assert push.returncode == 0, said  # was "Connection lost while sending request"
    assert seconds < 30, f"the stop took {seconds:.1f} s"
    assert pusher.revno(faulty.bzr_url(relpath)) == 13
    branch_is_sound(faulty, relpath)


def test_a_stop_with_no_push_in_flight_is_quick(faulty: Stack) -> None:
    faulty.wait_healthy(90)
    time.sleep(QUIET_SECONDS + 1)  # no smart request just ended
    try:
        seconds = timed_stop(faulty)
    finally:
        faulty.compose("start", "web")
        faulty.wait_healthy(90)
    print(f"no push: the stop took {seconds:.1f} s")
    assert seconds < 8, f"the stop took {seconds:.1f} s"
