"""Slow readers cannot hold the smart server's threads (issue 19, finding 5).

A client that asks for a big file and then reads a byte now and then kept
the daemon thread that was sending it: Apache's timeouts end slow *senders*
only, and each byte read reset `Timeout`. 16 such anonymous connections held
the smart server's 2 x 8 threads, and every clone and push waited for the
queue timeout. Now mod_qos closes an anonymous connection whose data rate
stays under QS_SrvMinDataRate, and the tree's plain files leave through
Apache itself (with AUTHZ_FILE: after tree-files.wsgi checked the rules, by
an internal redirect), never through a daemon thread.

The readers run inside the container (127.0.0.1, straight to Apache): from
the host, Docker's proxy would read for them into its own buffers.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MAIN_STACK_ENV, running_stack
from stack import ADMIN, Brz, Stack, mounted_rule_file, smart_request, write_credentials

pytestmark = pytest.mark.e2e

RULES = f"[/]\n* = r\n{ADMIN[0]} = rw\n"
BIG_MB = 24
READ_SECONDS = 60
# Enough to hold every smart-server thread (2 x 8) with `get` alone, plus
# readers of the pack file itself.
SMART_READERS = 18
FILE_READERS = 8

_MAKE_BIG = f"""set -e
export HOME=/tmp BRZ_EMAIL="Test <test@example.org>" BRZ_LOG=/dev/null
cd /srv/bzr && brz init -q big && cd big
head -c {BIG_MB}M /dev/urandom > blob && brz add -q blob && brz commit -q -m big
ls .bzr/repository/packs/
"""

# Each connection asks for the big file (by a plain GET, or the smart `get`
# verb), with a tiny receive buffer, and reads one byte a second until
# the server closes it or READ_SECONDS pass. Prints, as JSON, each one's
# kind, bytes read and the second at which the server closed it (or None).
_SLOW_READERS = """
import json, socket, sys, time
smart_path, smart_body, file_path, smart_count, file_count, seconds = sys.argv[1:]
body = bytes.fromhex(smart_body)
smart = (f"POST {smart_path} HTTP/1.1\\r\\nHost: localhost\\r\\n"
         f"Content-Length: {len(body)}\\r\\n\\r\\n").encode() + body
plain = f"GET {file_path} HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n".encode()
requests = [("smart", smart)] * int(smart_count) + [("file", plain)] * int(file_count)
readers, started = [], time.monotonic()
for kind, request in requests:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect(("127.0.0.1", 8080))
    sock.sendall(request)
    sock.settimeout(0.02)
    readers.append({"kind": kind, "sock": sock, "read": 0, "closed": None})
while time.monotonic() - started < float(seconds):
    time.sleep(1)
    for reader in readers:
        if reader["closed"] is not None:
            continue
        try:
            data = reader["sock"].recv(1)
        except socket.timeout:
            continue
        except OSError:
            data = b""
        if data:
            reader["read"] += 1
        else:
            reader["closed"] = round(time.monotonic() - started, 1)
for reader in readers:
    reader.pop("sock").close()
print(json.dumps(readers))
"""


@pytest.fixture(scope="module", params=["rules", "no-rules"])
def site(
    request: pytest.FixtureRequest, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, str, Brz, Path]]:
    """A stack (with AUTHZ_FILE or without) holding a branch with a big pack file
    and a small branch; yields the stack, the pack's name, the admin's brz and a
    working tree of the small branch."""
    base = tmp_path_factory.mktemp("slow-readers")
    env = dict(MAIN_STACK_ENV)
    if request.param == "rules":
        env.update(mounted_rule_file(base, RULES)[0])
    with running_stack(image, "slowreaders", **env) as stack:
        packs = stack.exec("sh", "-c", _MAKE_BIG, user="www-data").stdout.split()
        brz = Brz(base / "home")
        write_credentials(brz, stack.port, *ADMIN)
        work = base / "small"
        brz("init", str(work))
        (work / "file").write_text("small\n")
        brz("add", cwd=work)
        brz("commit", "-m", "small", cwd=work)
        brz("push", stack.bzr_url("small"), cwd=work)
        yield stack, next(p for p in packs if p.endswith(".pack")), brz, work


def slow_readers(stack: Stack, pack: str, result: list) -> None:
    """Run the readers inside the container; their JSON report lands in `result`."""
    relpath = f".bzr/repository/packs/{pack}".encode()
    ran = stack.exec(
        "python",
        "-c",
        _SLOW_READERS,
        "/bzr/big/.bzr/smart",
        smart_request(b"get", relpath).hex(),
        f"/bzr/big/.bzr/repository/packs/{pack}",
        str(SMART_READERS),
        str(FILE_READERS),
        str(READ_SECONDS),
    )
    result.extend(json.loads(ran.stdout))


def test_slow_readers_never_hold_clones_and_pushes(site, tmp_path: Path):
    stack, pack, brz, work = site
    report: list = []
    readers = threading.Thread(target=slow_readers, args=(stack, pack, report))
    readers.start()
    try:
        time.sleep(5)  # every reader connected and its answer started
        started = time.monotonic()
        brz("branch", stack.bzr_url("small"), str(tmp_path / "clone"))
        cloned = time.monotonic() - started
        (work / "file").write_text(f"small, again {time.time()}\n")
        brz("commit", "-m", "again", cwd=work)
        brz("push", stack.bzr_url("small"), cwd=work)
        pushed = time.monotonic() - started - cloned
    finally:
        readers.join(READ_SECONDS + 60)
    print(f"clone {cloned:.1f} s, push {pushed:.1f} s, readers {report}")
    assert cloned < 25 and pushed < 25, (cloned, pushed)
    # Apache cut the smart server's readers (freeing their threads; the kernel
    # may still trickle what it had queued to them). Readers of the file itself
    # may stay: Apache sends it in one piece (which mod_qos does not time) from
    # a worker of its own, never a daemon thread; one address holds at most
    # MAX_CONNECTIONS_PER_ADDRESS of them.
    assert len(report) == SMART_READERS + FILE_READERS
    log = stack.compose("logs", "--no-color", "web").stdout
    assert log.count("QS_SrvMinDataRate rule (out)") >= 16, log[-3000:]


def ranged_get(stack: Stack, path: str, range_header: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(stack.url(path), headers={"Range": range_header})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.headers["Content-Type"], response.read()


def test_the_tree_s_files_are_sent_by_apache_and_only_through_their_url(site):
    stack, pack, _, _ = site
    status, headers, body = stack.get("/bzr/small/.bzr/branch-format")
    assert status == 200 and body.startswith("Bazaar-NG meta directory")
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["Content-Security-Policy"] == "sandbox"
    assert ranged_get(stack, "/bzr/small/.bzr/branch-format", "bytes=0-6")[::2] == (206, b"Bazaar-")
    whole = ranged_get(stack, "/bzr/small/.bzr/branch-format", "bytes=" + "9" * 5000 + "-")
    assert whole[0] == 200 and whole[2].decode() == body
    assert stack.request("HEAD", "/bzr/small/.bzr/branch-format") == 200
    for path in (
        "/.tree-files/small/.bzr/branch-format",
        f"/.tree-files/big/.bzr/repository/packs/{pack}",
    ):
        assert stack.get(path)[0] in (403, 404), path
