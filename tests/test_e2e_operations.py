"""Operating the stack: upgrades at start, backup and restore, as docs/backup.md says.

Everything runs against the built image on a real Docker engine: the old
environment is upgraded by the real entrypoint, the backup is taken while
Apache serves, and the restore follows the commands of docs/backup.md word for word.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import new_stack
from old_trac import (
    OLD_VERSION,
    add_failing_plugin,
    database_version,
    make_old_environment,
    tree_digest,
)
from stack import ADMIN, Brz, new_ticket, write_credentials

pytestmark = pytest.mark.e2e
WWW_DATA = 33


def chown_tree(root: Path, uid: int) -> None:
    for directory, subdirs, files in os.walk(root):
        for entry in [directory, *(os.path.join(directory, n) for n in subdirs + files)]:
            os.lchown(entry, uid, uid)


def test_old_environment_is_upgraded_at_start(image, tmp_path):
    trac_dir = tmp_path / "trac"
    make_old_environment(trac_dir / "legacy", "Legacy")
    chown_tree(trac_dir, WWW_DATA)
    stack = new_stack(image, "upgrade", TRAC_DATA=str(trac_dir))
    try:
        stack.up()
        status, _, body = stack.get("/trac/legacy/wiki/TracUpgrade")
        assert status == 200 and "Legacy" in body
        logs = stack.compose("logs", "--no-color", "web").stdout
        assert f"legacy: needs an upgrade (database version {OLD_VERSION})" in logs
        assert f"legacy: upgraded from database version {OLD_VERSION} to 45" in logs
        (copy,) = (trac_dir / ".upgrade-backups").iterdir()
        assert database_version(copy) == OLD_VERSION
        assert database_version(trac_dir / "legacy") == 45
        # The copies are hidden from Trac's project index.
        status, _, index = stack.get("/trac/")
        assert status == 200 and "legacy" in index and "upgrade-backups" not in index
    finally:
        stack.compose("down", "-v", check=False)


def test_failed_upgrade_changes_nothing_and_the_other_projects_serve(image, tmp_path):
    """One project whose upgrade fails is put back as it was and listed on the
    front page with the reason; the others are served (issue 20)."""
    trac_dir = tmp_path / "trac"
    make_old_environment(trac_dir / "legacy")
    add_failing_plugin(trac_dir / "legacy")
    make_old_environment(trac_dir / "healthy", "Healthy")
    chown_tree(trac_dir, WWW_DATA)
    before = tree_digest(trac_dir / "legacy")
    stack = new_stack(image, "failedupgrade", TRAC_DATA=str(trac_dir))
    try:
        stack.up()
        status, _, front = stack.get("/trac/")
        assert status == 200 and "Healthy" in front
        assert "This project cannot be opened: legacy: `trac-admin upgrade --no-backup` failed" in (
            front
        )
        status, _, _ = stack.get("/trac/healthy/wiki/WikiStart")
        assert status == 200
        logs = stack.compose("logs", "--no-color", "web").stdout
    finally:
        stack.compose("down", "-v", check=False)
    (line,) = [line for line in logs.splitlines() if "trac-breezy: error:" in line]
    assert "legacy: `trac-admin upgrade --no-backup` failed" in line
    assert "the plugin upgrade broke on purpose" in line
    assert "restored from /var/lib/trac/.upgrade-backups/legacy-" in line
    assert "serving 1 of 2 Trac projects; not legacy" in logs
    assert database_version(trac_dir / "legacy") == OLD_VERSION
    assert tree_digest(trac_dir / "legacy") == before


def readme_restore_commands() -> list[str]:
    """The restore commands of docs/backup.md, as written there."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "backup.md").read_text()
    section = page.split("# Back up, restore and upgrade", 1)[1].split("\n## ", 1)[0]
    block = section.split("To restore", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_backup_and_restore_round_trip_as_the_readme_says(image, tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    env = {"BACKUP_DIR": str(backups), "TRAC_PROJECTS": "ops"}
    stack = new_stack(image, "backup", ADMIN_USER=ADMIN[0], ADMIN_PASSWORD=ADMIN[1], **env)
    brz = Brz(tmp_path / "home")
    try:
        stack.up()
        stack.exec("trac-breezy-user", "add", "carol", "--password-stdin", input="carols secret\n")
        ticket = new_ticket(stack, "/var/lib/trac/ops", "survives a restore")
        write_credentials(brz, stack.port, *ADMIN)
        work = tmp_path / "work"
        brz("init", str(work))
        for n in range(3):
            (work / f"file{n}").write_text(f"{n}\n")
            brz("add", "-q", cwd=work)
            brz("commit", "-q", "-m", f"change {n}", cwd=work)
        brz("push", "-q", "--create-prefix", stack.bzr_url("ops/trunk"), cwd=work)

        made = stack.exec("trac-breezy-backup")  # while Apache serves
        folder = Path(made.stdout.strip())
        assert re.fullmatch(r"/backup/trac-breezy-\d{8}T\d{6}Z", str(folder))
        assert (backups / folder.name / "bzr.tar.gz").is_file()

        stack.compose("down", "-v")  # every volume is gone
        for command in readme_restore_commands():
            command = command.replace("trac-breezy-YYYYmmddTHHMMSSZ", folder.name)
            assert command.startswith("docker compose ")
            args = command.split()[2:]
            if args[0] in ("run", "exec"):
                args.insert(1, "-T")  # no terminal here
            stack.compose(*args)
        stack.wait_healthy(120)

        status, _, body = stack.get(f"/trac/ops/ticket/{ticket}")
        assert status == 200 and "survives a restore" in body
        copy = tmp_path / "copy"
        brz("branch", "-q", stack.bzr_url("ops/trunk"), str(copy))
        assert brz.revno(copy) == 3
        write_credentials(brz, stack.port, "carol", "carols secret")
        (copy / "file3").write_text("after the restore\n")
        brz("add", "-q", cwd=copy)
        brz("commit", "-q", "-m", "after the restore", cwd=copy)
        brz("push", "-q", stack.bzr_url("ops/trunk"), cwd=copy)  # carol's password works
        assert brz.revno(stack.bzr_url("ops/trunk")) == 4
    finally:
        stack.compose("down", "-v", check=False)
