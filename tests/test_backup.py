"""Backup and restore with a real Trac, real Breezy branches and real tar files."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from trac.env import Environment
from trac.ticket.model import Ticket

from trac_breezy.admin import backup, projects, restore
from trac_breezy.container import settings
from trac_breezy.container.identity import Identity
from trac_breezy.container.settings import Settings

BRZ = str(Path(sys.executable).with_name("brz"))


def values(root: Path) -> Settings:
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
def site(tmp_path: Path) -> Settings:
    """A project with a ticket, a shared repository with a branch, two users."""
    for sub in ("trac", "bzr", "auth"):
        (tmp_path / "site" / sub).mkdir(parents=True)
    v = values(tmp_path / "site")
    projects.create(v, "code", "Code")
    env = Environment(str(v.trac_env_parent_dir / "code"))
    ticket = Ticket(env)
    ticket.populate({"summary": "kept across a restore", "reporter": "alice"})
    ticket.insert()
    env.shutdown()
    root = v.bzr_root
    brz("init-shared-repo", str(root / "code"), cwd=tmp_path)
    brz("init", str(root / "code" / "trunk"), cwd=tmp_path)
    for n in range(3):
        (root / "code" / "trunk" / f"file{n}").write_text(f"revision {n}\n")
        brz("add", "-q", cwd=root / "code" / "trunk")
        brz("commit", "-q", "-m", f"revision {n}", cwd=root / "code" / "trunk")
    v.htpasswd_path.write_text("alice:$2y$05$hash-a\nbob:$2y$05$hash-b\n")
    return v


# The servers' user when the tests run as root (root is refused as that user).
SERVER = Identity(4321, 4321)


@pytest.fixture
def make_backup(monkeypatch: pytest.MonkeyPatch):
    """The command's own path: folder made (and handed to the servers' user),
    filled by a forked child that becomes that user, renamed. Under root the
    child checks whom it would become instead of dropping root: this host's
    Python lives where another uid cannot run it (the image's e2e tests drop)."""

    def become(owner: Identity) -> None:  # in the child; a failure fails the backup
        if owner != SERVER:
            raise PermissionError(f"the child became {owner}, not the servers' user")

    if os.geteuid() == 0:
        monkeypatch.setattr(backup.identity, "become", become)

    def make(site: Settings, destination: Path) -> Path:
        destination.mkdir(parents=True, exist_ok=True)
        owner = SERVER if os.geteuid() == 0 else Identity.current()
        folder = backup.make_backup(site, destination, owner)
        assert folder.stat().st_uid == owner.uid
        return folder

    return make


def test_round_trip(site, tmp_path, make_backup):
    folder = make_backup(site, tmp_path / "backups")
    assert folder.parent == tmp_path / "backups"
    assert folder.name.startswith("trac-breezy-") and not folder.name.endswith(".partial")
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no .partial left
    assert sorted(p.name for p in folder.iterdir()) == ["bzr.tar.gz", "htpasswd", "trac"]

    for sub in ("trac", "bzr", "auth"):
        (tmp_path / "fresh" / sub).mkdir(parents=True)
    fresh = values(tmp_path / "fresh")
    fresh.htpasswd_path.write_text("bob:$2y$05$new-password\n")
    restore.restore(fresh, folder)

    env = Environment(str(fresh.trac_env_parent_dir / "code"))
    assert Ticket(env, 1)["summary"] == "kept across a restore"
    env.shutdown()
    trunk = fresh.bzr_root / "code" / "trunk"
    assert brz("revno", str(trunk), cwd=tmp_path).strip() == "3"
    assert "revision 2" in brz("log", "-r-1", str(trunk), cwd=tmp_path)
    brz("check", str(trunk), cwd=tmp_path)
    # Existing users keep their password; missing ones come back.
    assert fresh.htpasswd_path.read_text() == ("bob:$2y$05$new-password\nalice:$2y$05$hash-a\n")


def test_locks_held_during_the_backup_are_left_out(site, tmp_path, make_backup):
    import breezy.bzr  # noqa: F401
    from breezy.branch import Branch

    trunk = Branch.open(str(site.bzr_root / "code" / "trunk"))
    trunk.lock_write()  # a push in progress holds the branch lock
    try:
        folder = make_backup(site, tmp_path / "b")
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


def test_restore_refuses_to_overwrite(site, tmp_path, make_backup):
    folder = make_backup(site, tmp_path / "b")
    ini = site.trac_env_parent_dir / "code" / "conf" / "trac.ini"
    before = ini.read_bytes()
    with pytest.raises(backup.BackupError, match=r"exist already.*code.*restore into fresh"):
        restore.restore(site, folder)
    assert ini.read_bytes() == before


def test_restore_refuses_what_is_not_a_backup(site, tmp_path):
    with pytest.raises(backup.BackupError, match="is not a trac-breezy backup"):
        restore.restore(site, tmp_path)


def test_backup_needs_a_mounted_destination(tmp_path):
    with pytest.raises(backup.BackupError, match="does not exist; mount a directory there"):
        backup.new_backup_folder(tmp_path / "missing", Identity(0, 0))


def test_backup_destination_must_let_the_servers_user_in(tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(backup.BackupError, match="cannot be entered by the servers' user 33:33"):
        backup.new_backup_folder(closed, Identity(33, 33))
    assert list(closed.iterdir()) == []
    closed.chmod(0o755)
    folder = backup.new_backup_folder(closed, Identity(33, 33))
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


def test_what_cannot_be_copied_is_listed_and_the_rest_is_backed_up(site, tmp_path, make_backup):
    """A broken repository (a pusher can make one) aborted the whole backup;
    so did a project whose hotcopy failed."""
    (site.trac_env_parent_dir / "code" / "conf" / "trac.ini").write_text("[trac]\ndatabase = x\n")
    broken = site.bzr_root / "broken" / ".bzr" / "repository"
    broken.mkdir(parents=True)
    (broken / "format").write_text("no such format\n")
    (site.bzr_root / "code" / "outside").symlink_to("/etc")
    folder = make_backup(site, tmp_path / "b")
    skipped = backup.skipped_items(folder)
    assert [n.split(":")[0] for n in skipped] == [
        "Trac project code",
        f"{site.bzr_root}/code/outside",
        f"{broken}",
    ], skipped
    assert "archived without its lock" in skipped[2]
    with tarfile.open(folder / backup.BZR_ARCHIVE) as tar:
        names = tar.getnames()
    assert "broken/.bzr/repository/format" in names and "code/outside" not in names
    assert "code/.bzr/repository/pack-names" in names  # the rest is there


def test_a_restore_checks_everything_before_writing_anything(site, tmp_path, make_backup):
    """An absolute link in the archive failed the restore after the projects
    were restored, and the retry was refused."""
    folder = make_backup(site, tmp_path / "b")
    archive = folder / backup.BZR_ARCHIVE
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]
    link = tarfile.TarInfo("code/evil")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in [*members, (link, None)]:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    for sub in ("trac", "bzr", "auth"):
        (tmp_path / "fresh" / sub).mkdir(parents=True)
    fresh = values(tmp_path / "fresh")
    with pytest.raises(backup.BackupError, match=r"code/evil.*nothing was restored"):
        restore.restore(fresh, folder)
    assert list((tmp_path / "fresh" / "trac").iterdir()) == []
    assert list((tmp_path / "fresh" / "bzr").iterdir()) == []
