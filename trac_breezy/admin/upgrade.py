"""Upgrade mounted Trac environments at start: hotcopy first, all or nothing.

A Trac environment made by an older Trac refuses to serve until
`trac-admin ENV upgrade` has run (Trac's `open_environment` says so on every
page). At start, before Apache, each environment under TRAC_ENV_PARENT_DIR
that needs it is

1. copied with `trac-admin ENV hotcopy` into a dated folder on the Trac
   volume (TRAC_ENV_PARENT_DIR/.upgrade-backups/NAME-YYYYmmddTHHMMSSZ; Trac's
   project index hides names starting with a dot),
2. upgraded with `trac-admin ENV upgrade --no-backup` (the hotcopy is the
   backup, and a better one: Trac's own only copies the database file),
3. given the new default wiki pages with `trac-admin ENV wiki upgrade`.

Trac upgrades one component after another, each in its own transaction, and
may rewrite trac.ini on the way, so a failure can leave a half-upgraded
environment. When any step fails, the environment is put back exactly as the
hotcopy has it (files, and the database: the SQLite file is in the copy, a
PostgreSQL schema is reloaded from the hotcopy's dump), the log names the
project, the step, Trac's message and the backup, and the other projects
are served (the front page lists this one with the same line).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import sys
from collections.abc import Collection
from pathlib import Path

from trac_breezy import log, one_line
from trac_breezy.admin import AdminError, postgres
from trac_breezy.admin.trac_env import last_words, list_projects, trac_admin
from trac_breezy.container.settings import Settings

BACKUP_DIR_NAME = ".upgrade-backups"


class UpgradeError(AdminError):
    """An environment could not be upgraded; the text says what happened to it."""


def timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def database_versions(env_path: Path) -> tuple[int | None, bool]:
    """(the environment's database version, whether it needs an upgrade)."""
    from trac.env import Environment

    try:
        env = Environment(str(env_path))
    except Exception as error:  # Trac raises anything here (a plugin, a bad trac.ini)
        raise UpgradeError(
            f"{env_path.name} cannot be opened: {one_line(error)}; it is not served until the "
            "cause is fixed (docs/migration.md) and the container restarted"
        ) from None
    try:
        return env.database_version, env.needs_upgrade()
    except Exception as error:  # TracError, or what a plugin's check or the data raise
        raise UpgradeError(f"{env_path}: {one_line(error)}") from None
    finally:
        env.shutdown()


def upgrade_all(loaded: Settings, skip: Collection[str] = ()) -> dict[str, str]:
    """Upgrade every project that needs it, each on its own (those in `skip`
    aside); the projects that could not be opened or upgraded, with why."""
    parent = loaded.trac_env_parent_dir
    failed = {}
    for name in list_projects(parent):
        if name in skip:
            continue
        try:
            upgrade_if_needed(parent / name, parent / BACKUP_DIR_NAME)
        except UpgradeError as error:
            failed[name] = str(error)
        except Exception as error:  # whatever else: this project only, never the others
            failed[name] = (
                f"{name}: the upgrade check failed ({type(error).__name__}: {one_line(error)}); "
                "fix the cause and restart"
            )
        if name in failed:
            log(f"error: {failed[name]}")
    return failed


def upgrade_if_needed(env_path: Path, backups: Path) -> None:
    """Raises UpgradeError, after which the environment is as it was."""
    version, needed = database_versions(env_path)
    if needed:
        upgrade(env_path, backups, version)


def upgrade(env_path: Path, backups: Path, old_version: int | None) -> None:
    name = env_path.name
    backup = matching_copy(env_path, backups)
    if backup is not None:
        # A container that restarts after a failed upgrade would otherwise
        # pile up one copy per attempt.
        log(
            f"{name}: needs an upgrade (database version {old_version}); {backup}, made by "
            "an earlier attempt, still matches it, so no new copy"
        )
    else:
        backup = backups / f"{name}-{timestamp()}"
        log(f"{name}: needs an upgrade (database version {old_version}); hotcopy to {backup}")
        make_hotcopy(env_path, backup)
    for step in (("upgrade", "--no-backup"), ("wiki", "upgrade")):
        result = trac_admin(env_path, *step)
        if result.returncode != 0:
            restore(env_path, backup)
            raise UpgradeError(
                f"{name}: `trac-admin {' '.join(step)}` failed "
                f"({last_words(result)}); the environment was restored from {backup} "
                "and is unchanged; fix the cause (often a plugin that does not fit this Trac) "
                "and start again"
            )
    new_version, _ = database_versions(env_path)
    log(
        f"{name}: upgraded from database version {old_version} to {new_version}; "
        f"the copy from before is {backup}"
    )


def make_hotcopy(env_path: Path, backup: Path) -> None:
    backup.parent.mkdir(mode=0o700, exist_ok=True)
    try:
        hotcopy(env_path, backup)
    except Exception as error:  # whatever Trac or the copy raised
        shutil.rmtree(backup, ignore_errors=True)
        raise UpgradeError(
            f"{env_path.name}: the hotcopy before the upgrade failed, nothing was changed: "
            f"{one_line(error)}; make room on the Trac volume or fix the cause"
        ) from None


def matching_copy(env_path: Path, backups: Path) -> Path | None:
    """The newest copy of `env_path` in `backups`, if the environment is still as copied."""
    copies = sorted(backups.glob(f"{env_path.name}-[0-9]*T*Z")) if backups.is_dir() else []
    if copies and file_states(copies[-1]) == file_states(env_path):
        return copies[-1]
    return None


def file_states(root: Path) -> dict[Path, tuple[int, int]]:
    """(size, modification time) of each file, Trac's log and hotcopy's dump aside."""
    states = {}
    for directory, _, files in os.walk(root):
        for entry in files:
            path = Path(directory, entry)
            relative = path.relative_to(root)
            if relative.parts[0] != "log" and relative != postgres.POSTGRES_DUMP:
                info = path.lstat()
                states[relative] = (info.st_size, info.st_mtime_ns)
    return states


def hotcopy(env_path: Path, destination: Path) -> None:
    """Trac's own `hotcopy` command, on an environment that needs an upgrade.

    `trac-admin ENV hotcopy` refuses such an environment ("needs to be
    upgraded"), so the command is run here, through Trac's command manager,
    on an environment opened without that check.
    """
    from trac.admin.api import AdminCommandManager
    from trac.env import Environment

    env = Environment(str(env_path))
    try:
        with contextlib.redirect_stdout(sys.stderr):
            failed = AdminCommandManager(env).execute_command("hotcopy", str(destination))
    finally:
        env.shutdown()
    if failed:
        raise OSError(f"some files of {env_path} could not be copied (listed above)")


def restore(env_path: Path, backup: Path) -> None:
    """Make `env_path` what it was when `backup` (its hotcopy) was taken."""
    try:
        postgres.restore_from_hotcopy(env_path, backup, replace=True)
        mirror(backup, env_path, skip={postgres.POSTGRES_DUMP})
    except (OSError, postgres.DatabaseError) as error:
        raise UpgradeError(
            f"{env_path.name}: the upgrade failed and putting the environment back failed too "
            f"({error}); restore it by hand from {backup} (see the README, Back up)"
        ) from None


def mirror(source: Path, target: Path, skip: set[Path]) -> None:
    """Make the tree under `target` equal to `source`'s (like `rsync -a --delete`).

    Files that the copy kept as they were (same size and modification time;
    hotcopy preserves both) are left alone, so big attachments are not copied
    back for nothing. Works when `target` is itself a mount point.
    """
    for directory, subdirs, files in os.walk(target, topdown=False):
        for entry in files + subdirs:
            path = Path(directory, entry)
            if not os.path.lexists(source / path.relative_to(target)):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
    for directory, subdirs, files in os.walk(source):
        relative = Path(directory).relative_to(source)
        for entry in subdirs:
            (target / relative / entry).mkdir(exist_ok=True)
        for entry in files:
            if relative / entry not in skip:
                copy_if_changed(Path(directory, entry), target / relative / entry)


def copy_if_changed(source: Path, target: Path) -> None:
    old, new = source.lstat(), (target.lstat() if os.path.lexists(target) else None)
    if new and (old.st_size, old.st_mtime_ns) == (new.st_size, new.st_mtime_ns):
        return
    partial = target.with_name(f".{target.name}.restoring")
    shutil.copy2(source, partial, follow_symlinks=False)
    os.replace(partial, target)
