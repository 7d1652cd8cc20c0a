"""One container at a time for SQLite projects: refuse a second one.

SQLite keeps a Trac project's database in a file inside the project. Two
containers (replicas of a Swarm or Kubernetes service, `docker compose up
--scale web=2`, a second `docker run` on the same volume) serving the same
projects would both write it, and on a network file system SQLite's own
locking is unreliable: the database can be corrupted. With several replicas
every project must live in PostgreSQL (TRAC_DATABASE_URL).

So at start, when this container may write SQLite (a project uses it, or new
projects would: TRAC_DATABASE_URL is empty), it takes an exclusive `flock`
on a file in TRAC_ENV_PARENT_DIR without waiting, and keeps it for its whole
life: the descriptor stays open and is inherited across the exec into
supervisord (PID 1), so the kernel (or the NFS server's lock manager)
releases it when the container ends, however it ends. When another container
holds it, this one stops with one line naming the cause and the fix.

A consequence: a start-first rolling update (the new container starts before
the old one stops) is refused with SQLite; use stop-first, with one replica.

The lock file is opened as the servers' user (the entrypoint has dropped
root by then), never following a link, and must be a regular file: the
servers' user can write the directory, so root must not trust what is there.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from trac_breezy import NotRegularFile, log, open_regular
from trac_breezy.admin import ini_repair
from trac_breezy.admin.trac_env import list_projects
from trac_breezy.container.settings import Settings

LOCK_NAME = ".trac-breezy-sqlite.lock"
DEFAULT_DATABASE = "sqlite:db/trac.db"


class SQLiteShared(Exception):
    """Another container serves this volume's SQLite projects; the text says what to do."""


def database_of(env_path: Path) -> str:
    """`[trac] database` of a project's own trac.ini (Trac's default when unset).

    Read as the start-up repairs read it (ini_repair: repeated options, a
    byte-order mark, Windows-1252 from an old host, never waiting on a
    FIFO) rather than through Trac, which would open the database; this runs
    before those repairs. A file that cannot be read counts as SQLite.
    """
    try:
        text, _ = ini_repair.decode(ini_repair.read(env_path / "conf" / "trac.ini"))
        parser = ini_repair.parse_leniently(text)
    except (OSError, ini_repair.IniError):
        return DEFAULT_DATABASE
    return parser.get("trac", "database", fallback=DEFAULT_DATABASE).strip() or DEFAULT_DATABASE


def sqlite_projects(parent: Path) -> list[str]:
    return [
        name for name in list_projects(parent) if database_of(parent / name).startswith("sqlite:")
    ]


def why_sqlite(loaded: Settings) -> str | None:
    """Why this container may write SQLite, or None when it never does."""
    projects = sqlite_projects(loaded.trac_env_parent_dir)
    if projects:
        return "project(s) " + ", ".join(projects) + " use SQLite"
    if not loaded.trac_database_url:
        return "TRAC_DATABASE_URL is empty, so new projects would use SQLite"
    return None


def open_lock_file(path: Path) -> int | None:
    """The lock file's descriptor, inheritable; None when it cannot be had at all
    (a read-only volume, where nothing can write SQLite either)."""
    try:
        fd = open_regular(path, os.O_RDWR | os.O_CREAT, 0o644)
    except NotRegularFile:
        raise SQLiteShared(f"{path} is not a regular file; remove it") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise SQLiteShared(f"{path} is a symbolic link; remove it") from None
        if error.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise SQLiteShared(
                f"{path}: {error.strerror}; the SQLite guard needs this file, check the volume"
            ) from None
        try:
            fd = open_regular(path)
        except NotRegularFile:
            raise SQLiteShared(f"{path} is not a regular file; remove it") from None
        except OSError:
            return None
    os.set_inheritable(fd, True)
    return fd


def hold(loaded: Settings) -> int | None:
    """Take the lock when this container may write SQLite; returns the descriptor
    held (keep it open), or None when no lock is needed or possible.

    Raises SQLiteShared when another container holds it.
    """
    reason = why_sqlite(loaded)
    if reason is None:
        return None
    path = loaded.trac_env_parent_dir / LOCK_NAME
    fd = open_lock_file(path)
    if fd is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SQLiteShared(
            f"another container already serves the SQLite projects in "
            f"{loaded.trac_env_parent_dir} ({reason}; it holds {path}), and two would corrupt "
            f"them; run one replica (stop the other container first), or put every project in "
            f"PostgreSQL: set TRAC_DATABASE_URL and convert them with `trac-admin ENV convert_db`"
        ) from None
    except OSError as error:  # e.g. ENOLCK: a network file system without a lock manager
        os.close(fd)
        log(
            f"warning: cannot lock {path} ({error.strerror}), so nothing stops a second "
            f"container from writing the SQLite projects too ({reason}); run one replica only"
        )
        return None
    return fd
