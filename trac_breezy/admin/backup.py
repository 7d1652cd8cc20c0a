"""Back up everything while it serves: `trac-breezy-backup`.

    docker compose exec web trac-breezy-backup              # into /backup

A backup is one folder, `trac-breezy-YYYYmmddTHHMMSSZ`, in the mounted backup
directory:

- `trac/NAME/`: `trac-admin NAME hotcopy` of every project. Trac locks the
  database while it copies, so each copy is consistent; a PostgreSQL
  project's schema is dumped into it by `pg_dump`.
- `bzr.tar.gz`: the Bazaar tree. Branch files go in first, then each
  repository while we hold its write lock (so no push or repack changes it
  half-way); a branch tip therefore never names a revision the archived
  repository lacks. The lock itself is left out of the archive.
- `htpasswd`: the users.

The folder is written as `NAME.partial` and renamed when complete, so a
folder without that suffix is always a whole backup. Root makes and renames
the folder (the mounted directory may be root's); the copying runs in a child
process as the servers' user, so that the locks and database journals it
creates in the volumes are the servers' too. `trac_breezy.admin.restore`
reads what this writes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

from trac_breezy import log
from trac_breezy.admin import AdminError, command, postgres
from trac_breezy.admin.trac_env import last_words, list_projects, trac_admin
from trac_breezy.admin.upgrade import timestamp
from trac_breezy.container import identity
from trac_breezy.container.identity import Identity
from trac_breezy.container.settings import Settings

PROGRAM = "trac-breezy-backup"
DEFAULT_DESTINATION = Path("/backup")
PREFIX = "trac-breezy-"
BZR_ARCHIVE = "bzr.tar.gz"
HTPASSWD = "htpasswd"


class BackupError(AdminError):
    """The backup or restore cannot go on; the text says why."""


def make_backup(loaded: Settings, destination: Path, owner: Identity) -> Path:
    """The whole backup, as the command makes it; returns the finished folder."""
    partial = new_backup_folder(destination, owner)

    def fill_as_owner() -> None:
        identity.become(owner)
        fill(loaded, partial)

    problem = identity.run_in_child(fill_as_owner)
    if problem:
        raise BackupError(f"{problem}; {partial} is incomplete, delete it")
    return finish(partial)


def finish(partial: Path) -> Path:
    final = partial.with_name(partial.name.removesuffix(".partial"))
    partial.rename(final)
    return final


def fill(loaded: Settings, partial: Path) -> None:
    postgres.connect_to_server(loaded)
    parent = loaded.trac_env_parent_dir
    for name in list_projects(parent):
        result = trac_admin(parent / name, "hotcopy", str(partial / "trac" / name))
        if result.returncode != 0:
            raise BackupError(f"hotcopy of {name} failed: {last_words(result)}")
        log(f"copied Trac project {name}")
    if loaded.htpasswd_path.exists():
        shutil.copy2(loaded.htpasswd_path, partial / HTPASSWD)
    count = archive_bzr(loaded.bzr_root, partial / BZR_ARCHIVE)
    log(f"archived the Bazaar tree ({count} repositories)")


def new_backup_folder(destination: Path, owner: Identity) -> Path:
    """The `.partial` folder, made (as root, if need be) for the server's user."""
    if not destination.is_dir():
        raise BackupError(
            f"{destination} does not exist; mount a directory there (compose.yaml mounts "
            "BACKUP_DIR, ./backups by default) or name another one"
        )
    if not identity.can_access(destination.stat(), owner, os.X_OK):
        raise BackupError(
            f"{destination} cannot be entered by the servers' user {owner.uid}:{owner.gid}, "
            f"who does the copying; give it access (e.g. chmod 755 on the host folder)"
        )
    partial = destination / f"{PREFIX}{timestamp()}.partial"
    partial.mkdir(mode=0o700)
    if os.geteuid() == 0:
        identity.hand_directory_to(partial, owner, 0o700)
    return partial


def is_lock_state(relpath: str) -> bool:
    """Inside a Breezy lock directory (`.bzr/branch/lock/held`, ...): not data.

    A lock held while the archive was made would make the restored branch
    look locked; the lock directory itself is kept, empty, as Breezy makes it.
    """
    parts = Path(relpath).parts
    return any(
        parts[i] == ".bzr" and parts[i + 2] == "lock" and len(parts) > i + 3
        for i in range(len(parts) - 3)
    )


def repository_dirs(root: Path) -> list[Path]:
    """Every `.bzr/repository` under `root` (shared repositories and standalone branches)."""
    found = []
    for directory, subdirs, _ in os.walk(root):
        here = Path(directory)
        if here.name == "repository" and here.parent.name == ".bzr":
            found.append(here)
            subdirs.clear()
    return sorted(found)


@contextlib.contextmanager
def write_locked(repository_dir: Path) -> Iterator[None]:
    """Hold the repository's write lock (waits for a push in progress, as Breezy does)."""
    import breezy.bzr  # noqa: F401 - registers the Bazaar formats
    from breezy.controldir import ControlDir

    repository = ControlDir.open(str(repository_dir.parent.parent)).open_repository()
    repository.lock_write()
    try:
        yield
    finally:
        repository.unlock()


def archive_bzr(root: Path, archive: Path) -> int:
    """tar.gz of `root`: everything but repositories first, then each locked repository."""
    repositories = repository_dirs(root)
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        for directory, subdirs, files in os.walk(root):
            here = Path(directory)
            subdirs[:] = sorted(d for d in subdirs if here / d not in repositories)
            for entry in [*subdirs, *sorted(files)]:
                relpath = str((here / entry).relative_to(root))
                if not is_lock_state(relpath):
                    tar.add(here / entry, arcname=relpath, recursive=False)
        for repository in repositories:
            with write_locked(repository):
                tar.add(
                    repository,
                    arcname=str(repository.relative_to(root)),
                    filter=lambda info: None if is_lock_state(info.name) else info,
                )
    return len(repositories)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Hotcopy every Trac project and archive the Bazaar tree into one folder.",
    )
    parser.add_argument("destination", nargs="?", type=Path, default=DEFAULT_DESTINATION)
    args = parser.parse_args(argv)

    def carry_out(loaded: Settings) -> None:
        print(make_backup(loaded, args.destination, identity.server_identity(loaded)))

    return command.run(PROGRAM, carry_out)


if __name__ == "__main__":
    sys.exit(main())
