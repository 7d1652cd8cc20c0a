"""Who runs the servers, and how root becomes that user.

The entrypoint starts as root (or as whatever Compose's `user:` says), works
out the user that owns the data (PUID/PGID, else the owner of BZR_ROOT, else
www-data), and drops to it before anything touches the volumes; the admin
commands (`docker compose exec`, as root) work it out the same way and do the
same, so files they write belong to the servers too. Nothing is ever chown'ed
in the volumes.

The identity is always computed from the settings and the volume's owner,
never read back from a file: anything the servers' user can write could
otherwise name root, and root would then run Trac's code (and its plugins) as
root. Root is refused as the servers' user in any case.
"""

from __future__ import annotations

import grp
import os
import pwd
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from trac_breezy import one_line
from trac_breezy.container.paths import SERVER_HOME


class OwnerSettings(Protocol):
    """The settings that choose the servers' user (`settings.Settings` has them).

    A protocol, not an import: `settings` imports this module.
    """

    @property
    def puid(self) -> int | None: ...
    @property
    def pgid(self) -> int | None: ...
    @property
    def bzr_root(self) -> Path: ...


DEFAULT_UID = DEFAULT_GID = 33  # www-data in Debian
FALLBACK_USER_NAME = "trac-breezy"


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int

    @classmethod
    def current(cls) -> Identity:
        return cls(os.geteuid(), os.getegid())


def resolve_identity(settings: OwnerSettings, running_as: Identity) -> Identity:
    """The user Apache and the apps run as (see `resolve`)."""
    return resolve(settings.puid, settings.pgid, settings.bzr_root, running_as)


def resolve(puid: int | None, pgid: int | None, bzr_root: Path, running_as: Identity) -> Identity:
    """The user Apache and the apps run as, from PUID, PGID and BZR_ROOT.

    Not root at start (compose `user:`): whoever we are. Else PUID/PGID, else
    the owner of BZR_ROOT when that is not root (so pushed files are owned like
    the rest of a mounted tree), else www-data.
    """
    if running_as.uid != 0:
        return running_as
    try:
        owner = os.stat(bzr_root)
        detected = Identity(owner.st_uid, owner.st_gid) if owner.st_uid != 0 else None
    except OSError:
        detected = None
    if puid is not None:
        gid = pgid if pgid is not None else primary_gid(puid)
        return Identity(puid, gid)
    base = detected or Identity(DEFAULT_UID, DEFAULT_GID)
    return Identity(base.uid, pgid if pgid is not None else base.gid)


def primary_gid(uid: int) -> int:
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid


def can_access(info: os.stat_result, identity: Identity, needed: int) -> bool:
    """Unix permission check of `info` for `identity` (without switching user)."""
    if identity.uid == 0:
        return True
    if info.st_uid == identity.uid:
        shift = 6
    elif info.st_gid == identity.gid or info.st_gid in supplementary_gids(identity):
        shift = 3
    else:
        shift = 0
    bits = (info.st_mode >> shift) & 7
    return bits & needed == needed


def supplementary_gids(identity: Identity) -> set[int]:
    try:
        name = pwd.getpwuid(identity.uid).pw_name
    except KeyError:
        return set()
    return {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}


def user_name(identity: Identity) -> str:
    try:
        return pwd.getpwuid(identity.uid).pw_name
    except KeyError:
        return FALLBACK_USER_NAME


def ensure_passwd_entry(identity: Identity) -> None:
    """Give an unknown uid a name: Apache and mod_wsgi look the user up."""
    try:
        pwd.getpwuid(identity.uid)
        return
    except KeyError:
        pass
    with open("/etc/passwd", "a", encoding="utf-8") as passwd:
        passwd.write(
            f"{FALLBACK_USER_NAME}:x:{identity.uid}:{identity.gid}:{FALLBACK_USER_NAME}:"
            f"{SERVER_HOME}:/usr/sbin/nologin\n"
        )


def hand_directory_to(path: os.PathLike[str], owner: Identity, mode: int) -> None:
    """chown and chmod the directory itself, refusing to follow a link there
    (root must never act on a path the servers' user could have swapped)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, owner.uid, owner.gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def drop_privileges(identity: Identity) -> None:
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(identity.gid)
    os.setuid(identity.uid)


def server_identity(settings: OwnerSettings) -> Identity:
    """The servers' user, as the entrypoint chose it: the same settings and
    volumes give the same answer in `docker compose exec` and `run`."""
    return resolve_identity(settings, Identity.current())


def describe(error: BaseException) -> str:
    """One line for people: our errors and OS errors say it all, others get their type."""
    if isinstance(error, OSError) or type(error).__module__.startswith("trac_breezy"):
        return one_line(error)
    return one_line(f"{type(error).__name__}: {error}")


def run_in_child(action: Callable[[], None]) -> str | None:
    """Run `action` in a forked child; None if it succeeded, else what went wrong.

    The child may drop root (`become`) while the caller keeps it: root makes
    and hands over, the servers' user does the work.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        code = 0
        try:
            action()
        except BaseException as error:
            os.write(write_end, describe(error).encode()[:4000] or b"failed")
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        said = pipe.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return said or f"the child process ended with status {os.waitstatus_to_exitcode(status)}"


class RootRefused(PermissionError):
    """The servers' work would run as root."""


def become(identity: Identity) -> None:
    """Work as `identity` from here on, with the environment Breezy expects.

    Breezy names lock holders after the user (a uid without a passwd entry
    would fail every lock with "No username") and reads its configuration
    from HOME, which must not be root's.
    """
    if identity.uid == 0:
        raise RootRefused(
            "refusing to do the servers' work as root (uid 0); set PUID to the owner of the data"
        )
    drop_privileges(identity)
    os.environ["USER"] = os.environ["LOGNAME"] = user_name(identity)
    home = SERVER_HOME
    os.environ["HOME"] = str(home) if os.access(home, os.W_OK) else tempfile.gettempdir()
