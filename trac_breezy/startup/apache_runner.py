"""Apache in the foreground under supervisord, with a drain before it stops.

`docker compose stop` cut pushes in flight ("Connection lost while sending
request"): Apache's graceful stop lets its own workers finish, but it gives
mod_wsgi's daemon processes a fixed 3 s before killing them (Apache's limit
for "other child" processes; mod_wsgi's `shutdown-timeout` does not apply to
it), and a push is a series of requests whose next one may not have started.
Neither Apache nor mod_wsgi can wait for that, so this small runner does:
asked to stop, it keeps Apache serving while a push is in flight, for at most
`DRAIN_SECONDS`, then stops Apache gracefully and exits with its status.

A push is in flight while any Bazaar lock of this host is held (from its
first lock to its unlock), while any smart request is in progress (each keeps
a file in `paths.SMART_REQUESTS_DIR`, smart_server/in_flight.py: a new
branch's push holds no lock while its stream arrives, and was cut after 3.3 s),
and for `QUIET_SECONDS` after the last smart request started or ended (the
client's pause between two requests of one push).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from trac_breezy import log
from trac_breezy.admin import locks
from trac_breezy.container import paths

# Within supervisord's stopwaitsecs (30) and compose's stop_grace_period (35),
# with room for Apache's own graceful stop after it (3-4 s). A ~96 MB push of
# a new branch by the stock client, stopped as its stream arrived, needed
# 16-25 s on a busy 2-core machine (20 s cut it once).
DRAIN_SECONDS = 25.0
POLL_SECONDS = 0.25
# A smart request this recent may be one of a push's series: the pauses between
# them are under a second, a stock client's building of a big request body a few.
QUIET_SECONDS = 5.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGWINCH)
# Apache's graceful stop.
GRACEFUL_STOP = signal.SIGWINCH
# The validated BZR_ROOT, handed over by the entrypoint: the runner runs as
# the servers' user and must not read the settings again (a *_FILE secret is
# root's alone).
BZR_ROOT_VARIABLE = "TRAC_BREEZY_RUNNER_BZR_ROOT"


def apache_command() -> list[str]:
    return ["/usr/sbin/apache2", "-f", str(paths.HTTPD_CONF), "-DFOREGROUND"]


def drain(
    in_flight: Callable[[], int], seconds: float, clock: Callable[[], float] = time.monotonic
) -> int:
    """Wait while `in_flight()` is non-zero, for at most `seconds`; returns what is left."""
    deadline, left = clock() + seconds, in_flight()
    if left:
        log(f"stopping: waiting up to {seconds:.0f} s for {left} push(es) in flight")
    while left and clock() < deadline:
        time.sleep(POLL_SECONDS)
        left = in_flight()
    if left:
        log(f"stopping with {left} push(es) still in flight; they will be cut")
    return left


def run(command: Sequence[str], in_flight: Callable[[], int], seconds: float) -> int:
    """Run `command` until it exits or a stop signal comes; drain, then stop it."""
    stop = threading.Event()
    for number in STOP_SIGNALS:
        signal.signal(number, lambda *_: stop.set())
    server = subprocess.Popen(command)
    while server.poll() is None and not stop.wait(0.5):
        pass
    if server.poll() is None:
        drain(in_flight, seconds)
        server.send_signal(GRACEFUL_STOP)
    return server.wait()


def requests_in_flight(directory: Path) -> int:
    """The smart requests in progress: files in `directory` of processes still alive
    (a daemon killed mid-request leaves its file behind)."""
    try:
        names = [entry.name for entry in os.scandir(directory)]
    except OSError:
        return 0
    alive = {
        pid
        for pid in {n.split(".", 1)[0] for n in names}
        if pid.isdigit() and Path("/proc", pid).exists()
    }
    return sum(1 for name in names if name.split(".", 1)[0] in alive)


def recently_active(directory: Path, seconds: float, now: Callable[[], float] = time.time) -> bool:
    """Whether a smart request started or ended less than `seconds` ago (the
    directory's modification time, which each request's file changes)."""
    try:
        return now() - directory.stat().st_mtime < seconds
    except OSError:
        return False


def pushes_in_flight(root: Path, requests: Path) -> int:
    """Locks held, smart requests in progress, or 1 for a smart request just ended."""
    held = sum(1 for _ in locks.held_by_this_host(root)) + requests_in_flight(requests)
    return held or int(recently_active(requests, QUIET_SECONDS))


def main() -> int:
    root = Path(os.environ[BZR_ROOT_VARIABLE])
    in_flight = functools.partial(pushes_in_flight, root, paths.SMART_REQUESTS_DIR)
    return run(apache_command(), in_flight, DRAIN_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
