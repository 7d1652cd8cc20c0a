"""Files root reads at start, only where the servers' user cannot change them.

Root reads files named by settings (TLS_CERT_FILE, every NAME_FILE, the
TRAC_INI__..._FILE values) and copies what they hold into places the servers'
user can read (Apache's key copy, the shared trac.ini). If that user could
change the file, or any folder on the way to it, a link planted there would
make root copy any file, /etc/shadow or another secret, into the servers'
reach. So each folder on the way and the file itself must be on a read-only
mount, or neither owned nor writable by that user; a symbolic link is followed
only when it lies in such a folder (Kubernetes' secret volumes are made of
links, in root's read-only folders), and the file must be a regular one (a
FIFO planted there would hang the start).
"""

from __future__ import annotations

import os
import stat
from pathlib import PurePosixPath

from trac_breezy import NotRegularFile, open_regular
from trac_breezy.container import identity
from trac_breezy.container.identity import Identity

# As the kernel allows (ELOOP).
MAX_LINKS = 40
# A setting's value in a file is a password or a line: a megabyte is plenty.
MAX_VALUE_BYTES = 1 << 20


class Untrusted(Exception):
    """The file is not one root may read for the servers; the message is one line."""


def read_text(file_name: str, path: str, server: Identity | None) -> tuple[str, str | None]:
    """The value of a NAME_FILE setting (`file_name`) from the file at `path`,
    with an error naming the variable, or None.

    As root, the file is read only where the servers' user (`server`) cannot
    change it, as TLS_CERT_FILE is: root copies these values into files the
    servers read (the shared trac.ini), so a link planted by that user must
    never make root read a file of root's. Not root (compose `user:`), we are
    the servers' user and read what we may.
    """
    try:
        if os.geteuid() == 0:
            data = read_unchangeable(file_name, path, server, MAX_VALUE_BYTES)
        else:
            with open(path, "rb") as secret:
                data = secret.read(MAX_VALUE_BYTES)
        return data.decode("utf-8").rstrip("\r\n"), None
    except Untrusted as error:
        return "", str(error)
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        return (
            "",
            f"{file_name}={path}: cannot read the file ({reason}); mount it or unset {file_name}",
        )


def read_unchangeable(name: str, path: str, server: Identity | None, limit: int) -> bytes:
    """Up to `limit` bytes of the file at `path`, as root, only where the servers'
    user cannot change it (`server` None: where nobody but root can).

    `name` is the variable that named the file, for the messages. Raises
    Untrusted, or OSError as os.open does.
    """
    if not os.path.isabs(path):
        raise Untrusted(f"{name}={path} is not an absolute path; name the file from /")
    real = trusted_real_path(name, path, server)
    # No link is left on the way, and no folder on it can change: nothing to race.
    try:
        fd = open_regular(real)
    except NotRegularFile:
        raise Untrusted(
            f"{name}={path} is not a regular file; mount the file there or unset {name}"
        ) from None
    with os.fdopen(fd, "rb") as opened:
        info = os.fstat(opened.fileno())
        read_only = bool(os.fstatvfs(opened.fileno()).f_flag & os.ST_RDONLY)
        refuse_changeable(name, path, real, info, read_only, server)
        return opened.read(limit)


def trusted_real_path(name: str, path: str, server: Identity | None) -> str:
    """`path` with its links resolved one step at a time, trusting a link only in a
    folder the servers' user cannot change (a link it planted is never followed)."""
    resolved = PurePosixPath("/")
    pending = list(PurePosixPath(path).parts[1:])
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            resolved = resolved.parent
            continue
        folder = str(resolved)
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        refuse_changeable(name, path, folder, os.stat(folder), read_only, server)
        step = resolved / part
        if not os.path.islink(step):
            resolved = step
            continue
        links += 1
        if links > MAX_LINKS:
            raise Untrusted(f"{name}={path}: too many symbolic links; name the file itself")
        target = PurePosixPath(os.readlink(step))
        if target.is_absolute():
            resolved, pending = PurePosixPath("/"), [*target.parts[1:], *pending]
        else:
            pending = [*target.parts, *pending]
    return str(resolved)


def refuse_changeable(
    name: str, path: str, step: str, info: os.stat_result, read_only: bool, server: Identity | None
) -> None:
    """Untrusted when `step` (a folder on the way, or the file) can be changed by
    the servers' user (`server` None: by anybody but root)."""
    if read_only:
        return  # a read-only mount: nobody changes it
    if server is None:
        changeable = info.st_uid != 0 or bool(
            info.st_mode & stat.S_IWOTH or (info.st_mode & stat.S_IWGRP and info.st_gid != 0)
        )
        who = "users other than root"
    else:
        changeable = info.st_uid == server.uid or identity.can_access(info, server, os.W_OK)
        who = f"the servers' user {server.uid}:{server.gid}"
    if changeable:
        raise Untrusted(
            f"{name}={path}: {step} (owner {info.st_uid}:{info.st_gid}, mode "
            f"{stat.filemode(info.st_mode)}) can be changed by {who}, so root will not read "
            f"it; mount the file read-only (e.g. in SECRETS_DIR) or make it and its folders "
            f"root's"
        )
