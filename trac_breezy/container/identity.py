"""Who runs the servers, and how root becomes that user.

The entrypoint starts as root (or as whatever Compose's `user:` says), works
out the user that owns the data (PUID/PGID, else the owner of BZR_ROOT, else
www-data), and drops to it before anything touches the volumes; the admin
commands (`docker compose exec`, as root) do the same, so files they write
belong to the servers too. Nothing is ever chown'ed in the volumes.
"""

from __future__ import annotations

import grp
import os
import pwd
import tempfile
from dataclasses import dataclass

from trac_breezy.container.paths import IDENTITY_FILE, SERVER_HOME
from trac_breezy.container.settings import Settings

DEFAULT_UID = DEFAULT_GID = 33  # www-data in Debian
FALLBACK_USER_NAME = "trac-breezy"


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int

    @classmethod
    def current(cls) -> Identity:
        return cls(os.geteuid(), os.getegid())


def resolve_identity(settings: Settings, running_as: Identity) -> Identity:
    """The user Apache and the apps run as.

    Not root at start (compose `user:`): whoever we are. Else PUID/PGID, else
    the owner of BZR_ROOT when that is not root (so pushed files are owned like
    the rest of a mounted tree), else www-data.
    """
    if running_as.uid != 0:
        return running_as
    try:
        owner = os.stat(settings.bzr_root)
        detected = Identity(owner.st_uid, owner.st_gid) if owner.st_uid != 0 else None
    except OSError:
        detected = None
    if settings.puid is not None:
        gid = settings.pgid if settings.pgid is not None else primary_gid(settings.puid)
        return Identity(settings.puid, gid)
    base = detected or Identity(DEFAULT_UID, DEFAULT_GID)
    return Identity(base.uid, settings.pgid if settings.pgid is not None else base.gid)


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


def drop_privileges(identity: Identity) -> None:
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(identity.gid)
    os.setuid(identity.uid)


def record_server_identity(identity: Identity) -> None:
    """Tell the admin commands (run as root by `docker compose exec`) whom
    the files they write must belong to."""
    IDENTITY_FILE.write_text(f"{identity.uid}:{identity.gid}\n")


def recorded_server_identity() -> Identity | None:
    """The identity the entrypoint recorded, when we are root and it has run."""
    if os.geteuid() != 0 or not IDENTITY_FILE.exists():
        return None
    uid, gid = (int(n) for n in IDENTITY_FILE.read_text().split(":"))
    return Identity(uid, gid)


def server_identity(settings: Settings) -> Identity:
    """The servers' user: as the entrypoint chose, or would choose.

    `docker compose exec` finds the entrypoint's choice in the run directory;
    `docker compose run` (a new container, no entrypoint setup) works it out
    the same way from the settings and the volumes.
    """
    return recorded_server_identity() or resolve_identity(settings, Identity.current())


def become(identity: Identity) -> None:
    """Work as `identity` from here on, with the environment Breezy expects.

    Breezy names lock holders after the user (a uid without a passwd entry
    would fail every lock with "No username") and reads its configuration
    from HOME, which must not be root's.
    """
    drop_privileges(identity)
    os.environ["USER"] = os.environ["LOGNAME"] = user_name(identity)
    home = SERVER_HOME
    os.environ["HOME"] = str(home) if os.access(home, os.W_OK) else tempfile.gettempdir()
