"""Issue 19, finding 4 against the image: a 2 KB push declaring a 128 MB text is
refused by the real Apache + mod_wsgi smart server, and its daemons run under
mod_wsgi's memory-limit (RLIMIT_DATA) as a net; a real 100 MB file still pushes.
"""

from __future__ import annotations

import base64
import http.client
import os
from pathlib import Path

import pytest
from smart_harness import smart_reply
from stack import ADMIN, Brz, Stack, write_credentials
from test_pushed_text_sizes import HOSTILE_TEXT, hostile_block, insert_stream_request

from trac_breezy.startup.apache_config import BZR_MEMORY_LIMIT

pytestmark = pytest.mark.e2e

# What each smart-server daemon process holds, from /proc (kB).
DAEMON_MEMORY = """
import os
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if not cmdline.read().startswith(b"(wsgi:bzr)"):
                continue
        with open(f"/proc/{pid}/limits") as limits:
            data = next(line for line in limits if line.startswith("Max data size"))
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        print(pid, data.split()[3], fields["VmData"].split()[0], fields["VmHWM"].split()[0])
    except (OSError, StopIteration):
        pass
"""


def daemons(stack: Stack) -> list[tuple[str, str, int, int]]:
    """(pid, soft data limit, VmData kB, VmHWM kB) of each smart-server daemon."""
    out = stack.exec("python", "-c", DAEMON_MEMORY, user="www-data").stdout.split("\n")
    rows = [line.split() for line in out if line.strip()]
    return [(pid, limit, int(data), int(peak)) for pid, limit, data, peak in rows]


def post_as_admin(stack: Stack, path: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=120)
    token = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    headers = {"Content-Type": "application/octet-stream", "Authorization": f"Basic {token}"}
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_smart_server_daemons_have_a_data_limit(stack: Stack) -> None:
    found = daemons(stack)
    assert len(found) == 2, found  # BZR_WSGI_PROCESSES
    assert all(limit == str(BZR_MEMORY_LIMIT) for _, limit, _, _ in found), found
    print("smart-server daemons (pid, limit, VmData kB, VmHWM kB):", found)


def test_a_small_push_declaring_a_huge_text_is_refused_by_the_image(
    stack: Stack, tmp_path: Path
) -> None:
    brz = Brz(tmp_path / "home")
    write_credentials(brz, stack.port, *ADMIN)
    local = tmp_path / "local"
    brz("init", str(local))
    brz("push", stack.bzr_url("bounded"), cwd=local)
    status, reply = post_as_admin(
        stack, "/bzr/bounded/.bzr/smart", insert_stream_request(hostile_block(HOSTILE_TEXT, True))
    )
    assert status == 200
    kind, args, _ = smart_reply(reply)
    assert kind == b"E" and b"out of proportion" in b" ".join(args), args
    peaks = [peak for _, _, _, peak in daemons(stack)]
    assert max(peaks) < HOSTILE_TEXT // 1024, peaks  # no daemon ever held the text


def test_a_100_mb_file_still_pushes_to_the_image(stack: Stack, tmp_path: Path) -> None:
    brz = Brz(tmp_path / "home")
    write_credentials(brz, stack.port, *ADMIN)
    local = tmp_path / "local"
    brz("init", str(local))
    (local / "big.bin").write_bytes(os.urandom(100 * 1024 * 1024))
    brz("add", "big.bin", cwd=local)  # named: `add` alone skips files over 20 MB
    brz("commit", "-m", "big", cwd=local)
    brz("push", stack.bzr_url("big-file"), cwd=local)
    assert brz.revno(stack.bzr_url("big-file")) == 1
    print("after a 100 MB push (pid, limit, VmData kB, VmHWM kB):", daemons(stack))
