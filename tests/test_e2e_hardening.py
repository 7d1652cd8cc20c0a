"""Attacks on the running image that once worked, and must not any more.

Each test here failed on the image before the fix it names (see
docs/reliability.md for the whole table): the servers' user planting links
for root to follow, files a pusher writes becoming pages of Trac's origin,
slow clients holding every thread, user names told apart by timing, and
passwords guessed as fast as Apache answers.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from conftest import MAIN_STACK_ENV, running_stack
from stack import ADMIN, Stack

pytestmark = pytest.mark.e2e
WWW_DATA = "www-data"
# The timing test makes 50 failed logins from the test's address; the lockout
# test makes its own from inside the container (another client address).
LOGIN_FAILURE_LIMIT = 100
LOCKOUT_SECONDS = 20


@pytest.fixture(scope="module")
def stack(image: str) -> Iterator[Stack]:
    """The main stack's settings, with a login limit these tests can reach and outwait."""
    env = {
        **MAIN_STACK_ENV,
        "LOGIN_FAILURE_LIMIT": str(LOGIN_FAILURE_LIMIT),
        "LOGIN_LOCKOUT_SECONDS": str(LOCKOUT_SECONDS),
    }
    with running_stack(image, "hardening", **env) as stack:
        yield stack


def as_server(stack: Stack, script: str, check: bool = True):
    return stack.exec("sh", "-c", script, user=WWW_DATA, check=check)


def test_root_follows_nothing_the_servers_user_can_change(stack: Stack):
    # The run directory is root's: the servers' user writes only below server/.
    refused = as_server(stack, "touch /run/trac-breezy/planted", check=False)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    # Links planted where root used to chown (home) or create files (htpasswd).
    as_server(
        stack,
        "rm -rf /run/trac-breezy/server/home && ln -s /etc /run/trac-breezy/server/home && "
        "ln -s /etc/planted-by-www-data /run/trac-breezy/server/egg-cache-link",
    )
    stack.compose("restart", "web")
    stack.wait_healthy(90)
    owners = stack.exec("stat", "-c", "%U", "/etc", "/run/trac-breezy").stdout.split()
    assert owners == ["root", "root"]
    home = stack.exec("stat", "-c", "%F %U", "/run/trac-breezy/server/home").stdout.strip()
    assert home == f"directory {WWW_DATA}"
    assert stack.exec("test", "-e", "/etc/planted-by-www-data", check=False).returncode != 0
    # No identity file to rewrite: the admin commands work it out, and never as root.
    assert stack.exec("test", "-e", "/run/trac-breezy/identity", check=False).returncode != 0
    backup = stack.exec("trac-breezy-backup").stdout.strip().splitlines()[-1]
    owners = stack.exec("sh", "-c", f"find {backup} -printf '%u\\n' | sort -u").stdout.split()
    assert owners == [WWW_DATA], owners


def test_files_pushers_write_are_inert_on_trac_s_origin(stack: Stack):
    """A pushed notes.html was served as text/html with no CSP: script there
    could read a Trac admin's form token."""
    as_server(stack, "echo '<script>alert(document.cookie)</script>' > /srv/bzr/notes.html")
    status, headers, body = stack.get("/bzr/notes.html")
    assert status == 200 and "<script>" in body
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "sandbox"
    status, headers, listing = stack.get("/bzr/")
    assert status == 200 and "notes.html" in listing
    assert headers["Content-Type"].startswith("text/html")  # the folder page (trac_app/front)
    assert headers["Content-Security-Policy"] == "sandbox"
    status, headers, _ = stack.get("/trac/")
    assert status == 200
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"


# -- slow clients ---------------------------------------------------------------------------

SMART_HEAD = (
    b"POST /bzr/slow/.bzr/smart HTTP/1.1\r\nHost: localhost\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
    b"bzr message 3 (bzr 1.6)\n"
)
TRAC_FORM_HEAD = (
    b"POST /trac/delta/query HTTP/1.1\r\nHost: localhost\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nstatus="
)
UNFINISHED_HEADERS = b"GET /trac/ HTTP/1.1\r\nHost: localhost\r\nX-Slow: "


@contextlib.contextmanager
def slow_clients(port: int, count: int, head: bytes) -> Iterator[None]:
    """`count` connections that send `head` and then nothing (closed afterwards)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sockets.append(sock)
            with contextlib.suppress(OSError):  # closed at once: over the per-address limit
                sock.sendall(head)
        time.sleep(1.5)  # let each reach a thread
        yield
    finally:
        for sock in sockets:
            sock.close()


def timed(call) -> tuple[object, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def smart_hello(stack: Stack) -> int:
    request = urllib.request.Request(
        stack.url("/bzr/.bzr/smart"),
        data=b"bzr request 2\nhello\n",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status


def test_slow_smart_clients_never_starve_trac(stack: Stack):
    """30 clients dribbling smart-request bodies held every daemon thread: Trac
    stopped answering. Now the smart server has its own threads, and Apache
    closes the dribblers after its body timeout."""
    with slow_clients(stack.port, 30, SMART_HEAD):
        for _ in range(3):
            (status, _, _), seconds = timed(lambda: stack.get("/trac/"))
            assert status == 200 and seconds < 2, seconds
        status, seconds = timed(lambda: smart_hello(stack))
        assert status == 200 and seconds < 25, seconds  # freed by RequestReadTimeout


def test_slow_trac_forms_never_starve_the_smart_server(stack: Stack):
    with slow_clients(stack.port, 40, TRAC_FORM_HEAD):
        status, seconds = timed(lambda: smart_hello(stack))
        assert status == 200 and seconds < 2, seconds
        (status, _, _), seconds = timed(lambda: stack.get("/trac/delta/chrome/common/css/trac.css"))
        assert status == 200 and seconds < 2, seconds
        (status, _, _), seconds = timed(lambda: stack.get("/trac/"))
        assert status == 200 and seconds < 25, seconds


# Run inside the container: requests from 127.0.0.1, another client address
# than the tests' (which all come through Docker's proxy, from one address).
# Prints the seconds each path took to answer 200.
_TIMED_GETS = """
import sys, time, urllib.request
for path in sys.argv[1:]:
    started = time.monotonic()
    with urllib.request.urlopen("http://127.0.0.1:8080" + path, timeout=60) as response:
        assert response.status == 200, response.status
        response.read()
    print(f"{time.monotonic() - started:.3f}")
"""


def seconds_from_inside(stack: Stack, *paths: str) -> list[float]:
    """How long each of `paths` took to answer from another client address (127.0.0.1)."""
    return [float(line) for line in stack.exec("python", "-c", _TIMED_GETS, *paths).stdout.split()]


def test_unfinished_headers_do_not_hang_the_site(stack: Stack):
    """140 connections with unfinished headers hung even static files; 300 from
    one address still stalled everyone for ~8 s. Now one address holds at most
    MAX_CONNECTIONS_PER_ADDRESS connections (mod_qos), the rest are closed."""
    with slow_clients(stack.port, 300, UNFINISHED_HEADERS):
        seconds = seconds_from_inside(stack, "/trac/delta/chrome/common/css/trac.css", "/trac/")
        assert all(second < 2 for second in seconds), seconds


# -- user names cannot be probed ------------------------------------------------------------


def seconds_to_refuse(stack: Stack, user: str, password: str, tries: int = 25) -> float:
    """The median time Apache takes to refuse these credentials (a 401)."""
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    times = []
    for _ in range(tries):
        request = urllib.request.Request(
            stack.url("/trac/delta/login"), headers={"Authorization": f"Basic {credentials}"}
        )
        started = time.perf_counter()
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except urllib.error.HTTPError as error:
            assert error.code == 401
        else:
            pytest.fail("wrong credentials were accepted")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_a_wrong_password_costs_the_same_whether_the_user_exists(stack: Stack):
    """An unknown user was refused in 0.2 ms, a known one in 2 ms (bcrypt):
    user names could be probed."""
    known = seconds_to_refuse(stack, ADMIN[0], "not the password")
    unknown = seconds_to_refuse(stack, "no-such-user", "not the password")
    assert unknown > 0.6 * known, (known, unknown)


# -- password guessing ----------------------------------------------------------------------

# Run inside the container: logins from 127.0.0.1, another client address
# than the tests'. Prints the status of each request, one per line.
_LOGINS = """
import base64, sys, urllib.error, urllib.request
def status(path, password, data=None):
    auth = base64.b64encode(f"admin:{password}".encode()).decode()
    request = urllib.request.Request("http://127.0.0.1:8080" + path, data=data,
                                     headers={"Authorization": "Basic " + auth})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
for password, path, data in (
    [("guess", "/trac/delta/login", None)] * int(sys.argv[1])
    + [("guess", "/bzr/.bzr/smart", b"bzr request 2\\nhello\\n")] * int(sys.argv[2])
    + [(sys.argv[3], "/trac/delta/login", None)]
):
    code, text = status(path, password, data)
    print(f"{code} {text}".strip().replace("\\n", " "))
"""


def logins_from_inside(stack: Stack, trac: int, bzr: int) -> list[str]:
    """`trac` + `bzr` wrong passwords, then the right one, from 127.0.0.1."""
    ran = stack.exec("python", "-c", _LOGINS, str(trac), str(bzr), ADMIN[1])
    return ran.stdout.splitlines()


def test_password_guessing_locks_the_guessing_address_out(stack: Stack):
    """Nothing slowed password guessing: an address could try passwords as fast
    as bcrypt allowed, on Trac's login and on the smart server alike."""
    # Two guesses past the limit: mod_qos counts a failure once its answer has
    # gone out, so the guess right after the limit may still get its 401.
    half = LOGIN_FAILURE_LIMIT // 2
    statuses = logins_from_inside(stack, half, LOGIN_FAILURE_LIMIT - half + 2)
    # Every guess up to the limit is refused as wrong; then even the right
    # password from that address is refused, with a text that says why.
    assert all(line.startswith("401") for line in statuses[:LOGIN_FAILURE_LIMIT]), statuses
    assert all(line[:3] in ("401", "429") for line in statuses[LOGIN_FAILURE_LIMIT:-1])
    locked = statuses[-1]
    assert locked.startswith("429") and "too many failed logins" in locked, locked
    # Other addresses (the tests') are not locked out, and a password prompt
    # without credentials never counts as a failure.
    assert stack.request("GET", "/trac/delta/login") == 401
    assert login_status(stack, *ADMIN) == 200
    # After the lockout period the address is let in again.
    time.sleep(LOCKOUT_SECONDS + 2)
    assert logins_from_inside(stack, 0, 0) == ["200"]


def login_status(stack: Stack, user: str, password: str) -> int:
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        stack.url("/trac/delta/login"), headers={"Authorization": f"Basic {credentials}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
