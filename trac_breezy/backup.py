"""Back up everything while it serves; restore it into fresh volumes.

    docker compose exec web trac-breezy-backup              # into /backup
    docker compose run --rm --no-deps web trac-breezy-restore /backup/trac-breezy-...

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
folder without that suffix is always a whole backup.

Restore never overwrites: it refuses a project, a schema or a top-level
Bazaar directory that already exists, and only adds users that are missing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tarfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from trac_breezy import database, log, projects, settings, upgrade, users

DEFAULT_DESTINATION = Path("/backup")
PREFIX = "trac-breezy-"
BZR_ARCHIVE = "bzr.tar.gz"
HTPASSWD = "htpasswd"


class BackupError(Exception):
    """The backup or restore cannot go on; the text says why."""


# -- backup --------------------------------------------------------------------


def backup(values: Mapping[str, str], partial: Path) -> Path:
    """Fill the new folder `partial` with a complete backup; returns its final path."""
    fill(values, partial)
    return finish(partial)


def finish(partial: Path) -> Path:
    final = partial.with_name(partial.name.removesuffix(".partial"))
    partial.rename(final)
    return final


def fill(values: Mapping[str, str], partial: Path) -> None:
    database.connect_to_server(values)
    parent = Path(values["TRAC_ENV_PARENT_DIR"])
    for name in projects.list_projects(parent):
        result = projects.trac_admin(parent / name, "hotcopy", str(partial / "trac" / name))
        if result.returncode != 0:
            raise BackupError(f"hotcopy of {name} failed: {projects.last_words(result)}")
        log(f"copied Trac project {name}")
    htpasswd = Path(values["HTPASSWD_PATH"])
    if htpasswd.exists():
        shutil.copy2(htpasswd, partial / HTPASSWD)
    count = archive_bzr(Path(values["BZR_ROOT"]), partial / BZR_ARCHIVE)
    log(f"archived the Bazaar tree ({count} repositories)")


def new_backup_folder(destination: Path, owner: tuple[int, int]) -> Path:
    """The `.partial` folder, made (as root, if need be) for the server's user."""
    if not destination.is_dir():
        raise BackupError(
            f"{destination} does not exist; mount a directory there (compose.yaml mounts "
            "BACKUP_DIR, ./backups by default) or name another one"
        )
    from trac_breezy.entrypoint import Identity, can_access

    if not can_access(destination.stat(), Identity(*owner), os.X_OK):
        raise BackupError(
            f"{destination} cannot be entered by the servers' user {owner[0]}:{owner[1]}, "
            f"who does the copying; give it access (e.g. chmod 755 on the host folder)"
        )
    partial = destination / f"{PREFIX}{upgrade.timestamp()}.partial"
    partial.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(partial, *owner)
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


# -- restore -------------------------------------------------------------------


def restore(values: Mapping[str, str], source: Path) -> None:
    """Copy a backup folder into the volumes; refuses anything that exists."""
    database.connect_to_server(values)
    if not (source / BZR_ARCHIVE).is_file():
        raise BackupError(f"{source} is not a trac-breezy backup (no {BZR_ARCHIVE} in it)")
    parent = Path(values["TRAC_ENV_PARENT_DIR"])
    copies = sorted((source / "trac").iterdir()) if (source / "trac").is_dir() else []
    clashes = [c.name for c in copies if (parent / c.name).exists()]
    bzr_root = Path(values["BZR_ROOT"])
    with tarfile.open(source / BZR_ARCHIVE) as tar:
        top = {Path(m.name).parts[0] for m in tar.getmembers() if m.name not in ("", ".")}
        clashes += [f"{bzr_root}/{t}" for t in sorted(top) if (bzr_root / t).exists()]
        if clashes:
            raise BackupError(
                f"these exist already and would be overwritten: {', '.join(clashes)}; restore "
                "into fresh volumes, or move them aside first"
            )
        for copy in copies:
            restore_project(copy, parent / copy.name)
        tar.extractall(bzr_root, filter="data")
    log(f"restored the Bazaar tree into {bzr_root} ({len(top)} top-level entries)")
    merge_users(source / HTPASSWD, Path(values["HTPASSWD_PATH"]))


def restore_project(copy: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.restoring")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(copy, partial, symlinks=True, ignore=ignore_dump(copy))
    database.restore_from_hotcopy(partial, copy, replace=False)
    partial.rename(target)
    log(f"restored Trac project {target.name}")


def ignore_dump(copy: Path):
    dump = copy / database.POSTGRES_DUMP

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(directory, n) == dump]

    return ignore


def merge_users(backed_up: Path, current: Path) -> None:
    """Add the backup's users that `current` lacks; existing users keep their password."""
    if not backed_up.is_file():
        return
    known = set(users.list_users(current))
    lines = [
        line
        for line in backed_up.read_text(encoding="utf-8").splitlines()
        if ":" in line and line.split(":", 1)[0] not in known
    ]
    if lines:
        with open(current, "a", encoding="utf-8") as htpasswd:
            htpasswd.write("".join(line + "\n" for line in lines))
        current.chmod(0o640)
    log(f"restored {len(lines)} users; {len(known)} existing users kept as they were")


# -- commands --------------------------------------------------------------------


def backup_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trac-breezy-backup",
        description="Hotcopy every Trac project and archive the Bazaar tree into one folder.",
    )
    parser.add_argument("destination", nargs="?", type=Path, default=DEFAULT_DESTINATION)
    args = parser.parse_args(argv)

    def make_backup(values: Mapping[str, str]) -> None:
        # Root makes and renames the folder (the mounted directory may be
        # root's); the copying runs as the servers' user, so that the locks
        # and database journals it creates in the volumes are the servers' too.
        partial = new_backup_folder(args.destination, projects.server_owner(values))
        if as_server_user("trac-breezy-backup", values, lambda: fill(values, partial)):
            print(finish(partial))
        else:
            raise SystemExit(1)

    return report_errors("trac-breezy-backup", make_backup)


def restore_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trac-breezy-restore",
        description="Restore a trac-breezy-backup folder into fresh volumes.",
    )
    parser.add_argument("backup", type=Path)
    args = parser.parse_args(argv)

    def restore_as_server_user(values: Mapping[str, str]) -> None:
        projects.become_server_user(values)
        restore(values, args.backup)

    return report_errors("trac-breezy-restore", restore_as_server_user)


def as_server_user(program: str, values: Mapping[str, str], action: Callable[[], None]) -> bool:
    """Run `action` in a child process as the servers' user; True if it succeeded."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            projects.become_server_user(values)
            code = report_errors(program, lambda _values: action(), values)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def report_errors(
    program: str,
    action: Callable[[Mapping[str, str]], None],
    values: Mapping[str, str] | None = None,
) -> int:
    """Run `action` with the settings; any failure becomes one line and exit status 1."""
    try:
        action(settings.load(os.environ) if values is None else values)
    except (BackupError, database.DatabaseError, settings.SettingsError, OSError) as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # Breezy's lock errors and the like: one line, not a trace
        print(f"{program}: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0
