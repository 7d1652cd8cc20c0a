"""A mixed load on a running stack, shared by the load test and the benchmark.

Anonymous pullers clone a 1,000-revision branch over and over, authenticated
pushers commit and push to branches of their own, and Trac readers walk the
pages of that branch (wiki, browser, log, timeline, changesets, a file at an
old revision), all at once, for a bounded time. It records every error and
every Trac page's latency, and samples the daemons' memory (RSS) and open
file descriptors from the host. tests/test_e2e_load.py runs it for about two
minutes and checks the outcome; bench/mixed_load.py runs the ten-minute
variant and prints a report for docs/reliability.md. Traffic goes only to the
stack's loopback port.
"""

from __future__ import annotations

import random
import shutil
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from histories import make_history
from stack import ADMIN, Brz, Stack, write_credentials

BRANCH = "load/trunk"
PROJECT = "load"
# What the settings of the stack under load must say (with ADMIN_USER/PASSWORD).
# Its anonymous Trac readers stand for many visitors behind one address (the
# host's): no per-address limit on expensive pages (TRAC_EXPENSIVE_PAGES).
STACK_ENV = {
    "TRAC_PROJECTS": PROJECT,
    "TRAC_REPOSITORIES": f"{PROJECT}={BRANCH}",
    "TRAC_EXPENSIVE_PAGES": "open",
}


@dataclass
class Outcome:
    """What a run saw: errors, Trac latencies, and the daemons' resources."""

    errors: list[str] = field(default_factory=list)
    trac_seconds: list[float] = field(default_factory=list)
    pulls: int = 0
    pushes: int = 0
    samples: list[dict[str, int]] = field(default_factory=list)  # t, rss_kib, fds
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)

    def p(self, quantile: float) -> float:
        ordered = sorted(self.trac_seconds)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] if ordered else 0.0


def daemon_pids(stack: Stack) -> list[int]:
    """Host pids of the mod_wsgi daemons (both groups)."""
    top = subprocess.run(
        ["docker", "top", stack.container_id(), "-eo", "pid,args"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[1:]
    return [int(line.split()[0]) for line in top if "(wsgi:" in line]


def resources(stack: Stack) -> dict[str, int]:
    """Summed RSS (KiB) and open fds of the daemons, read from the host's /proc."""
    rss = fds = 0
    for pid in daemon_pids(stack):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss += int(status.split("VmRSS:")[1].split()[0])
            fds += len(list(Path(f"/proc/{pid}/fd").iterdir()))
        except (OSError, IndexError):
            continue  # a daemon restarting right now
    return {"t": int(time.time()), "rss_kib": rss, "fds": fds}


def prepare(stack: Stack, work: Path) -> Brz:
    """The 1,000-revision branch on the server; returns an authenticated client."""
    brz = Brz(work / "home")
    write_credentials(brz, stack.port, *ADMIN)
    history = make_history(work / "history", revisions=1000, files=200, seed=7)
    brz("push", "--create-prefix", stack.bzr_url(BRANCH), cwd=history)
    return brz


def trac_paths(stack: Stack, revisions: int = 1000) -> list[str]:
    base = f"/trac/{PROJECT}"
    rng = random.Random(3)
    pages = [f"{base}/wiki/WikiStart", f"{base}/browser", f"{base}/log/", f"{base}/timeline"]
    pages += [f"{base}/changeset/{rng.randint(1, revisions)}" for _ in range(8)]
    pages += [f"{base}/browser/dir3/file3.txt?rev={rng.randint(1, revisions)}" for _ in range(8)]
    return pages


def read_trac(stack: Stack, outcome: Outcome, until: float, seed: int) -> None:
    rng, pages = random.Random(seed), trac_paths(stack)
    while time.monotonic() < until:
        path = rng.choice(pages)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(stack.url(path), timeout=60) as response:
                response.read()
        except (urllib.error.URLError, OSError) as error:
            outcome.error(f"GET {path}: {error}")
            continue
        with outcome.lock:
            outcome.trac_seconds.append(time.monotonic() - started)


def pull(stack: Stack, outcome: Outcome, until: float, work: Path) -> None:
    brz = Brz(work / "home")
    while time.monotonic() < until:
        target = work / "copy"
        shutil.rmtree(target, ignore_errors=True)
        result = brz("branch", stack.bzr_url(BRANCH), str(target), check=False)
        if result.returncode != 0:
            outcome.error(f"branch: {result.stderr.strip()[-300:]}")
        else:
            with outcome.lock:
                outcome.pulls += 1
    shutil.rmtree(work, ignore_errors=True)


def push(stack: Stack, outcome: Outcome, until: float, work: Path, number: int) -> None:
    brz = Brz(work / "home")
    write_credentials(brz, stack.port, *ADMIN)
    local = work / "branch"
    brz("init", str(local))
    revision = 0
    while time.monotonic() < until:
        revision += 1
        (local / "file").write_text(f"pusher {number} revision {revision}\n")
        brz("add", "-q", cwd=local)
        brz("commit", "-q", "-m", f"pusher {number} #{revision}", cwd=local)
        target = stack.bzr_url(f"load/{work.parent.name}-pusher{number}")  # one per run
        result = brz("push", target, cwd=local, check=False)
        if result.returncode != 0:
            outcome.error(f"push: {result.stderr.strip()[-300:]}")
        else:
            with outcome.lock:
                outcome.pushes += 1


def run(
    stack: Stack,
    work: Path,
    seconds: float,
    pullers: int = 6,
    pushers: int = 2,
    readers: int = 4,
    sample_every: float = 10.0,
) -> Outcome:
    """The mixed load for `seconds` (every loop ends by then), sampling resources."""
    outcome, until = Outcome(), time.monotonic() + seconds
    workers = [
        *(
            threading.Thread(target=pull, args=(stack, outcome, until, work / f"pull{n}"))
            for n in range(pullers)
        ),
        *(
            threading.Thread(target=push, args=(stack, outcome, until, work / f"push{n}", n))
            for n in range(pushers)
        ),
        *(
            threading.Thread(target=read_trac, args=(stack, outcome, until, n))
            for n in range(readers)
        ),
    ]
    for worker in workers:
        worker.start()
    while time.monotonic() < until:
        outcome.samples.append(resources(stack))
        time.sleep(min(sample_every, max(0.0, until - time.monotonic())))
    for worker in workers:
        worker.join(timeout=300)
    outcome.samples.append(resources(stack))
    return outcome


def summary(outcome: Outcome) -> dict[str, float]:
    rss = [s["rss_kib"] for s in outcome.samples]
    return {
        "errors": len(outcome.errors),
        "pulls": outcome.pulls,
        "pushes": outcome.pushes,
        "trac_pages": len(outcome.trac_seconds),
        "trac_p50_s": round(statistics.median(outcome.trac_seconds), 3)
        if outcome.trac_seconds
        else 0.0,
        "trac_p99_s": round(outcome.p(0.99), 3),
        "rss_first_mb": round(rss[0] / 1024, 1) if rss else 0.0,
        "rss_last_mb": round(rss[-1] / 1024, 1) if rss else 0.0,
        "rss_max_mb": round(max(rss) / 1024, 1) if rss else 0.0,
    }
