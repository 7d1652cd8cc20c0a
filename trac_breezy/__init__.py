"""trac-breezy: Trac and Breezy's smart server behind one Apache httpd.

The package is grouped by the runtime each part lives in (README, Layout):

- `setenv`: what Apache's `SetEnv` hands the two apps (the one contract
  between the rendered configuration and the code inside mod_wsgi);
- `container/`: the settings table, the run-directory paths and the identity
  the servers run as (root at start, never imported inside Apache);
- `admin/`: tasks on the volumes (start-up tasks and the `trac-breezy-*`
  commands);
- `startup/`: the entrypoint, the Apache configuration, supervisord and the
  healthcheck;
- `smart_server/`: Breezy's smart server inside mod_wsgi (no Trac);
- `trac_app/`: what runs inside Trac: the Bazaar backend, the push
  announcer, logout, and the garbage-collection middleware.
"""

import os
import stat
import sys
from pathlib import Path


def one_line(text: object) -> str:
    """`text` with every run of white space (line breaks too) folded to one space."""
    return " ".join(str(text).split())


def log(message: str) -> None:
    """One line for `docker logs`, as every part of the container writes them."""
    print(f"trac-breezy: {message}", file=sys.stderr, flush=True)


class NotRegularFile(OSError):
    """`open_regular` found a directory, a FIFO, a device or a socket."""


def open_regular(path: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """A descriptor of the regular file at `path`, opened with `flags`.

    Never through a link planted at `path` (O_NOFOLLOW) and never waiting on
    a FIFO planted there (O_NONBLOCK): for files in places another user can
    write. Raises OSError as os.open does, or NotRegularFile.
    """
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(f"{path} is not a regular file")
    return fd


def replace_file(path: Path, text: str, mode: int, group: int | None = None) -> None:
    """Replace `path` whole with `text` (readers see the old file or the new one).

    Written beside it under a name of its own, created exclusively and never
    through a link planted there, with `mode` set exactly (whatever the umask)
    and, when root writes it, owned by root and `group`.
    """
    partial = path.with_name(f".{path.name}.{os.getpid()}.new")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        if group is not None and os.geteuid() == 0:
            os.fchown(fd, 0, group)
        os.fchmod(fd, mode)
        out.write(text)
    os.replace(partial, path)
