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
- `htpasswd`: the users, and `htpasswd.emails`: their recorded mail addresses.

The folder is written as `NAME.partial` and renamed when complete, so a
folder without that suffix is always a whole backup. What cannot be copied
as it should (a project whose hotcopy fails, a repository that cannot be
opened and so is archived without its lock, a symbolic link that leads out of
the tree, which a restore would refuse) does not stop the rest: it is listed
in `SKIPPED` in the folder, and the command says so and exits non-zero. Root makes and renames
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
from collections.abc import Callable, Iterator
from pathlib import Path

from trac_breezy import log, one_line
from trac_breezy.admin import AdminError, command, emails, postgres
from trac_breezy.admin.trac_env import last_words, list_projects, trac_admin
from trac_breezy.admin.upgrade import timestamp
from trac_breezy.bzr_formats import register_all
from trac_breezy.container import identity
from trac_breezy.container.identity import Identity
from trac_breezy.container.settings import Settings

PROGRAM = "trac-breezy-backup"
DEFAULT_DESTINATION = Path("/backup")
PREFIX = "trac-breezy-"
BZR_ARCHIVE = "bzr.tar.gz"
HTPASSWD = "htpasswd"
SKIPPED = "SKIPPED"


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


class IncompleteBackup(BackupError):
    """The backup is finished, but some items could not be copied as they are."""


def fill(loaded: Settings, partial: Path) -> None:
    """Copy everything into `partial`; what cannot be copied is listed in SKIPPED."""
    postgres.connect_to_server(loaded)
    skipped = copy_projects(loaded.trac_env_parent_dir, partial / "trac")
    if loaded.htpasswd_path.exists():
        shutil.copy2(loaded.htpasswd_path, partial / HTPASSWD)
    if emails.record_path(loaded.htpasswd_path).exists():
        shutil.copy2(
            emails.record_path(loaded.htpasswd_path), emails.record_path(partial / HTPASSWD)
        )
    skipped += archive_bzr(loaded.bzr_root, partial / BZR_ARCHIVE)
    log(f"archived the Bazaar tree ({len(repository_dirs(loaded.bzr_root))} repositories)")
    for note in skipped:
        log(f"not backed up as it is: {note}")
    if skipped:
        (partial / SKIPPED).write_text("".join(note + "\n" for note in skipped), encoding="utf-8")


def copy_projects(parent: Path, copies: Path) -> list[str]:
    """Trac's hotcopy of every project; what failed, one line each."""
    failed = []
    for name in list_projects(parent):
        result = trac_admin(parent / name, "hotcopy", str(copies / name))
        if result.returncode != 0:
            failed.append(f"Trac project {name}: hotcopy failed: {last_words(result)}")
            continue
        log(f"copied Trac project {name}")
    return failed


def skipped_items(folder: Path) -> list[str]:
    """What a finished backup in `folder` could not copy as it is."""
    notes = folder / SKIPPED
    return notes.read_text(encoding="utf-8").splitlines() if notes.exists() else []


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


class UnopenableRepository(Exception):
    """Breezy cannot open or lock a repository (a pusher can make such a thing)."""


@contextlib.contextmanager
def write_locked(repository_dir: Path) -> Iterator[None]:
    """Hold the repository's write lock (waits for a push in progress, as Breezy does)."""
    from breezy.controldir import ControlDir

    register_all()  # every format Breezy reads, bzr 0.x's weave ones too

    try:
        repository = ControlDir.open(str(repository_dir.parent.parent)).open_repository()
        repository.lock_write()
    except Exception as error:  # Breezy raises many kinds for a broken repository
        raise UnopenableRepository(
            f"it cannot be opened ({type(error).__name__}: {one_line(error)[:200]})"
        ) from error
    try:
        yield
    finally:
        repository.unlock()


TarFilter = Callable[[tarfile.TarInfo], tarfile.TarInfo | None]


def restorable(root: Path, skipped: list[str]) -> TarFilter:
    """A tar filter: leave out lock state, and what a restore would refuse
    (tarfile's `data` filter: links out of the tree, devices, ...), noting it."""

    def check(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if is_lock_state(info.name):
            return None
        try:
            tarfile.data_filter(info, str(root))  # returns a changed copy; only its verdict counts
        except tarfile.FilterError as error:
            skipped.append(f"{root / info.name}: left out, a restore would refuse it ({error})")
            return None
        return info

    return check


def archive_bzr(root: Path, archive: Path) -> list[str]:
    """tar.gz of `root`: everything but repositories first, then each locked
    repository; returns what was left out or copied without its lock."""
    repositories, skipped = repository_dirs(root), list[str]()
    check = restorable(root, skipped)
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        for directory, subdirs, files in os.walk(root):
            here = Path(directory)
            subdirs[:] = sorted(d for d in subdirs if here / d not in repositories)
            for entry in [*subdirs, *sorted(files)]:
                relpath = str((here / entry).relative_to(root))
                tar.add(here / entry, arcname=relpath, recursive=False, filter=check)
        for repository in repositories:
            archive_repository(tar, root, repository, check, skipped)
    return skipped


def archive_repository(
    tar: tarfile.TarFile, root: Path, repository: Path, check: TarFilter, skipped: list[str]
) -> None:
    """One repository, while holding its write lock; one that cannot be
    opened (a pusher can make such a thing) is archived as it is, and noted."""
    name = str(repository.relative_to(root))
    try:
        with write_locked(repository):
            tar.add(repository, arcname=name, filter=check)
    except UnopenableRepository as error:
        skipped.append(f"{repository}: archived without its lock, {error}; run `brz check` on it")
        tar.add(repository, arcname=name, filter=check)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Hotcopy every Trac project and archive the Bazaar tree into one folder.",
    )
    parser.add_argument("destination", nargs="?", type=Path, default=DEFAULT_DESTINATION)
    args = parser.parse_args(argv)

    def carry_out(loaded: Settings) -> None:
        folder = make_backup(loaded, args.destination, identity.server_identity(loaded))
        print(folder)
        skipped = skipped_items(folder)
        for note in skipped:
            print(f"{PROGRAM}: warning: {note}", file=sys.stderr)
        if skipped:
            raise IncompleteBackup(
                f"the backup {folder} is finished, but {len(skipped)} items were not copied as "
                f"they are (listed above and in {folder / SKIPPED})"
            )

    return command.run(PROGRAM, carry_out)


if __name__ == "__main__":
    sys.exit(main())
