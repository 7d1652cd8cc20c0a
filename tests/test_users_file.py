"""The users file as old hosts bring it (issue 20): read as Apache reads it,
and judged for the dry run (trac_breezy/admin/users_file.py).

The hashes below are what Apache's own `htpasswd` 2.4 (the image's) printed
for `htpasswd -nb{m,s,d,B,p} USER PASSWORD`; the end-to-end test
(test_e2e_users_file.py) makes them afresh and logs in with them.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from trac_breezy.admin import users
from trac_breezy.admin.findings import Action
from trac_breezy.admin.users_file import BOM, inspect, kind, lines, names
from trac_breezy.passwords import users_line

APR1 = "$apr1$ZBPc91S3$GrL31RY.V428Hv34AL.W20"
SHA1 = "{SHA}8Wyi36Noi/CMek4hVErxW9WYy3A="
CRYPT = "RlFfm7F.ZENcs"
BCRYPT = "$2y$05$vWCE2BdVv0zQzVS2YobJqeIQJ7JdAZWf/thefDgrTH7gu9svF9mAO"
SHA512 = (
    "$6$PWu8J5GUAhPdo9b2$M8nTGdv5H/tgcD1tKUitjb2Uu2LCEYAWFIXAzIbgGiuMIrPMG"
    "K3VLN81D7EwTY4kB9y4/u8oeNuCUyzTezA0l/"
)
PLAIN = "pw5"  # htpasswd -p: "storing passwords as plain text might just not work"

WINDOWS_FILE = (
    BOM
    + (
        f"alice:{APR1}\r\n"
        "# moved from the old host: 2009\r\n"
        "\r\n"
        f"bob:{SHA1}\r\n"
        f"  carol:{BCRYPT}  \r\n"
        f"alice:{BCRYPT}\r\n"
    ).encode()
)


def test_kinds_of_what_htpasswd_writes():
    assert [kind(h) for h in (APR1, SHA1, CRYPT, BCRYPT, SHA512)] == [
        "apr1 (MD5)",
        "SHA-1",
        "crypt (DES)",
        "bcrypt",
        "crypt SHA-512",
    ]
    assert kind(PLAIN) == "plain text"
    assert kind("{SSHA}abcdefgh") == "unknown scheme"
    assert kind("") == kind(None) == "malformed"


def test_a_windows_file_is_read_as_apache_reads_it():
    """Byte order mark skipped (Apache on Windows), \\r and white space
    stripped and comments skipped (ap_cfg_getline), the first line counts."""
    assert [(line.number, line.name, line.hashed) for line in lines(WINDOWS_FILE)] == [
        (1, "alice", APR1),
        (4, "bob", SHA1),
        (5, "carol", BCRYPT),
        (6, "alice", BCRYPT),
    ]
    assert names(WINDOWS_FILE) == ["alice", "bob", "carol"]


def test_apache_s_provider_finds_the_first_user_of_a_file_with_a_byte_order_mark():
    """It read the mark as part of the first name: alice could not log in."""
    assert users_line(WINDOWS_FILE, b"alice") == APR1.encode()
    assert users_line(WINDOWS_FILE, b"bob") == SHA1.encode()
    assert users_line(WINDOWS_FILE, b"carol") == BCRYPT.encode()
    assert users_line(WINDOWS_FILE, b"# moved from the old host") is None


def test_trac_breezy_user_lists_users_not_comments_or_a_byte_order_mark(tmp_path: Path):
    """`list` showed '# moved from the old host' as a user, and '\\ufeffalice'."""
    path = tmp_path / "htpasswd"
    path.write_bytes(WINDOWS_FILE)
    assert users.list_users(path) == ["alice", "bob", "carol"]


def test_the_byte_order_mark_goes_and_nothing_else_changes(tmp_path: Path):
    path = tmp_path / "htpasswd"
    path.write_bytes(WINDOWS_FILE)
    users.drop_byte_order_mark(path)
    assert path.read_bytes() == WINDOWS_FILE[len(BOM) :]
    users.drop_byte_order_mark(path)
    assert path.read_bytes() == WINDOWS_FILE[len(BOM) :]


def test_inspect_counts_users_by_kind_and_hints_at_passwd(tmp_path: Path):
    path = tmp_path / "htpasswd"
    path.write_bytes(WINDOWS_FILE)
    found = inspect(path)
    assert found[0].subject == "users file" and found[0].action is Action.OK
    assert found[0].text.startswith("3 users: 1 apr1 (MD5), 1 SHA-1, 1 bcrypt; ")
    assert "trac-breezy-user passwd NAME" in found[0].text
    (duplicate,) = [f for f in found if "lines" in f.text]
    assert "'alice' has 2 lines (1, 6): the first counts, as in Apache" in duplicate.text
    assert any("byte order mark" in f.text for f in found)
    assert not [f for f in found if f.action is not Action.OK]


def test_inspect_refuses_lines_that_cannot_work_here(tmp_path: Path):
    path = tmp_path / "htpasswd"
    path.write_text(
        f"dora:{BCRYPT}\nerik:{PLAIN}\nfrank:{{SSHA}}abcdefgh\ngus\nhal:\n", encoding="utf-8"
    )
    found = inspect(path)
    assert found[0].text == "4 users: 1 bcrypt, 1 plain text, 1 unknown scheme, 1 malformed"
    refused = [f.text for f in found if f.action is Action.REFUSE]
    assert len(refused) == 4, refused
    assert refused[0].startswith("line 2, user 'erik', holds a plain-text password")
    assert "trac-breezy-user passwd erik" in refused[0]
    assert refused[1].startswith("line 3, user 'frank', holds a hash of a kind")
    assert refused[2].startswith("line 4, user 'gus', names no password")
    assert refused[3].startswith("line 5, user 'hal', names no password")


def test_inspect_of_a_missing_or_bcrypt_only_file(tmp_path: Path):
    (missing,) = inspect(tmp_path / "none")
    assert missing.action is Action.OK and "start-up creates it" in missing.text
    path = tmp_path / "htpasswd"
    path.write_text(f"dora:{BCRYPT}\n", encoding="utf-8")
    assert [f.line() for f in inspect(path)] == ["users file: ok: 1 user: 1 bcrypt"]


def test_a_restore_keeps_the_first_user_of_a_backup_with_a_byte_order_mark(tmp_path: Path):
    """merge_users copied the backup's first line, mark and all, into the middle
    of the users file, where it named nobody: alice was lost; and comments
    with a colon came along as users."""
    from trac_breezy.admin.restore import merge_users

    backed_up, current = tmp_path / "backup-htpasswd", tmp_path / "htpasswd"
    backed_up.write_bytes(WINDOWS_FILE)
    current.write_bytes(f"carol:{SHA512}\n".encode())
    merge_users(backed_up, current)
    assert current.read_bytes() == f"carol:{SHA512}\nalice:{APR1}\nbob:{SHA1}\n".encode()
    assert users_line(current.read_bytes(), b"alice") == APR1.encode()


def test_a_fifo_for_the_users_file_is_refused_not_waited_on(tmp_path: Path):
    """The users file lives on a volume the servers' user writes: a FIFO there
    hung the dry run (reading it) and the start (opening it to write)."""

    def stuck(signum: int, frame: object) -> None:
        pytest.fail("blocked on the FIFO")  # not an OSError, which both catch

    fifo = tmp_path / ".htpasswd"
    os.mkfifo(fifo)
    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(5)
    try:
        (finding,) = inspect(fifo)
        assert finding.action is Action.REFUSE
        assert finding.text == f"{fifo} cannot be read: it is not a regular file"
        with pytest.raises(OSError, match="is not a regular file"):
            users.ensure_file(fifo)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
