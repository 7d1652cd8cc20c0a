"""Backup and restore with a real Trac, real Breezy branches and real tar files."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from trac.env import Environment
from trac.ticket.model import Ticket

from trac_breezy import backup, projects, settings

BRZ = str(Path(sys.executable).with_name("brz"))


def values(root: Path) -> dict[str, str]:
    return settings.load(
        {
            "TRAC_ENV_PARENT_DIR": str(root / "trac"),
            "BZR_ROOT": str(root / "bzr"),
            "HTPASSWD_PATH": str(root / "auth" / "htpasswd"),
        }
    )


def brz(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [BRZ, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={
            "HOME": str(cwd or Path.cwd()),
            "BRZ_EMAIL": "Test <test@example.org>",
            "PATH": "/usr/bin:/bin",
        },
    )
    return result.stdout


@pytest.fixture
def site(tmp_path: Path) -> dict[str, str]:
    """A project with a ticket, a shared repository with a branch, two users."""
    for sub in ("trac", "bzr", "auth"):
        (tmp_path / "site" / sub).mkdir(parents=True)
    v = values(tmp_path / "site")
    projects.create(v, "code", "Code")
    env = Environment(str(Path(v["TRAC_ENV_PARENT_DIR"]) / "code"))
    ticket = Ticket(env)
    ticket.populate({"summary": "kept across a restore", "reporter": "alice"})
    ticket.insert()
    env.shutdown()
    root = Path(v["BZR_ROOT"])
    brz("init-shared-repo", str(root / "code"), cwd=tmp_path)
    brz("init", str(root / "code" / "trunk"), cwd=tmp_path)
    for n in range(3):
        (root / "code" / "trunk" / f"file{n}").write_text(f"revision {n}\n")
        brz("add", "-q", cwd=root / "code" / "trunk")
        brz("commit", "-q", "-m", f"revision {n}", cwd=root / "code" / "trunk")
    Path(v["HTPASSWD_PATH"]).write_text("alice:$2y$05$hash-a\nbob:$2y$05$hash-b\n")
    return v


def test_round_trip(site, tmp_path):
    partial = tmp_path / "backups" / "trac-breezy-now.partial"
    partial.mkdir(parents=True)
    folder = backup.backup(site, partial)
    assert folder == tmp_path / "backups" / "trac-breezy-now"
    assert not partial.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["bzr.tar.gz", "htpasswd", "trac"]

    for sub in ("trac", "bzr", "auth"):
        (tmp_path / "fresh" / sub).mkdir(parents=True)
    fresh = values(tmp_path / "fresh")
    Path(fresh["HTPASSWD_PATH"]).write_text("bob:$2y$05$new-password\n")
    backup.restore(fresh, folder)

    env = Environment(str(Path(fresh["TRAC_ENV_PARENT_DIR"]) / "code"))
    assert Ticket(env, 1)["summary"] == "kept across a restore"
    env.shutdown()
    trunk = Path(fresh["BZR_ROOT"]) / "code" / "trunk"
    assert brz("revno", str(trunk), cwd=tmp_path).strip() == "3"
    assert "revision 2" in brz("log", "-r-1", str(trunk), cwd=tmp_path)
    brz("check", str(trunk), cwd=tmp_path)
    # Existing users keep their password; missing ones come back.
    assert Path(fresh["HTPASSWD_PATH"]).read_text() == (
        "bob:$2y$05$new-password\nalice:$2y$05$hash-a\n"
    )


def test_locks_held_during_the_backup_are_left_out(site, tmp_path):
    import breezy.bzr  # noqa: F401
    from breezy.branch import Branch

    trunk = Branch.open(str(Path(site["BZR_ROOT"]) / "code" / "trunk"))
    trunk.lock_write()  # a push in progress holds the branch lock
    try:
        partial = tmp_path / "b.partial"
        partial.mkdir()
        folder = backup.backup(site, partial)
    finally:
        trunk.unlock()
    with tarfile.open(folder / backup.BZR_ARCHIVE) as tar:
        names = tar.getnames()
    assert "code/trunk/.bzr/branch/lock" in names
    assert not [n for n in names if "/lock/held" in n]
    assert "code/.bzr/repository/pack-names" in names
    # Branch files come before the repository they point into.
    assert names.index("code/trunk/.bzr/branch/last-revision") < names.index(
        "code/.bzr/repository/pack-names"
    )


def test_restore_refuses_to_overwrite(site, tmp_path):
    partial = tmp_path / "b.partial"
    partial.mkdir()
    folder = backup.backup(site, partial)
    ini = Path(site["TRAC_ENV_PARENT_DIR"]) / "code" / "conf" / "trac.ini"
    before = ini.read_bytes()
    with pytest.raises(backup.BackupError, match=r"exist already.*code.*restore into fresh"):
        backup.restore(site, folder)
    assert ini.read_bytes() == before


def test_restore_refuses_what_is_not_a_backup(site, tmp_path):
    with pytest.raises(backup.BackupError, match="is not a trac-breezy backup"):
        backup.restore(site, tmp_path)


def test_backup_needs_a_mounted_destination(tmp_path):
    with pytest.raises(backup.BackupError, match="does not exist; mount a directory there"):
        backup.new_backup_folder(tmp_path / "missing", (0, 0))


def test_backup_destination_must_let_the_servers_user_in(tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(backup.BackupError, match="cannot be entered by the servers' user 33:33"):
        backup.new_backup_folder(closed, (33, 33))
    assert list(closed.iterdir()) == []
    closed.chmod(0o755)
    folder = backup.new_backup_folder(closed, (33, 33))
    assert folder.name.endswith(".partial") and folder.stat().st_uid == 33


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("code/.bzr/repository/lock/held/info", True),
        ("code/.bzr/repository/lock/held", True),
        ("code/.bzr/branch/lock/abc.tmp", True),
        ("code/.bzr/branch/lock", False),
        ("code/.bzr/branch/last-revision", False),
        ("lock/held/file", False),
    ],
)
def test_lock_state(relpath, expected):
    assert backup.is_lock_state(relpath) is expected
