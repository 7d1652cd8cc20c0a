"""Break the Bazaar locks that this container's dead processes left behind.

A push killed half-way (`kill -9` of a daemon, `docker kill`, a crash)
leaves its branch and repository lock directories held, and every later push
would fail with a lock error until someone ran `brz break-lock`. Breezy
itself steals a lock whose holder is a dead process on the same host
(`locks.steal_dead`, on by default), but only while it can tell: after the
container restarts, its new processes reuse the same small pids, and a dead
holder's pid may well be alive again as another process.

At start, though, no process of this container is alive but the entrypoint:
every lock that names this container's host name was left by a process that
is gone. Those, and only those, are broken here, at each start, before Apache
runs. Locks held by other hosts (another replica on shared storage, a
`brz serve` elsewhere) are never touched. While the container runs, the same
list tells whether a push of ours is in flight (`held_by_this_host`), which a
stop waits for (trac_breezy.startup.apache_runner).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from trac_breezy import log

if TYPE_CHECKING:  # Breezy is imported where it is used
    from breezy.lockdir import LockDir, LockHeldInfo

# The lock directories Breezy keeps under `.bzr/`.
LOCKED_PARTS = ("branch", "repository", "checkout")


def lock_dirs(root: Path) -> Iterator[Path]:
    """Every `.bzr/<part>/lock` under `root` whose lock is held (has `held/`)."""
    for directory, subdirs, _ in os.walk(root):
        if ".bzr" not in subdirs:
            continue
        control = Path(directory, ".bzr")
        for part in LOCKED_PARTS:
            lock = control / part / "lock"
            if (lock / "held").is_dir():
                yield lock
        subdirs[:] = [d for d in subdirs if d != ".bzr"]


def held_by_this_host(root: Path) -> Iterator[tuple[LockDir, LockHeldInfo]]:
    """(LockDir, holder) of each lock under `root` held by a process of this host."""
    from breezy import transport
    from breezy.lockdir import LockDir
    from breezy.osutils import get_host_name

    host = get_host_name()
    for lock in lock_dirs(root):
        lockdir = LockDir(transport.get_transport_from_path(str(lock.parent)), "lock")
        holder = lockdir.peek()
        if holder is not None and holder.get("hostname") == host:
            yield lockdir, holder


def break_locks_of_this_host(root: Path) -> list[str]:
    """Break the held locks under `root` that this host's (dead) processes hold."""
    broken = []
    for lockdir, holder in held_by_this_host(root):
        lockdir.force_break(holder)
        where = lockdir.transport.local_abspath(".")
        log(f"broke the lock of {where} left by {holder} (a process that died)")
        broken.append(where)
    return broken
