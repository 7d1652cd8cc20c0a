"""Benchmark: our smart server over bzr+http:// against `brz serve` over bzr://.

Why: the project's target is Bazaar over HTTP within 5 % of Breezy's own
server. At about one second per operation, half of it client start-up, one
run moves by +-0.1 s, more than the budget: so every cell runs at least 5
times, interleaved with the others, and the spread is reported with the
median.

What, in one run and on the same data:

* histories (deterministic, cached under --work): "small", ~1,000 revisions
  over a few hundred text files, and "big", 30 revisions of incompressible
  blobs (~384 MB in .bzr);
* operations: `branch` (`brz branch --no-tree` of the whole history from the
  server), `push` (`brz push` of the whole history to a new branch on the
  server, a full push every time) and `pull` (`brz pull` of the last 10
  revisions into a local branch that has all the others);
* servers: `brz serve --allow-writes` over bzr:// (the reference, started
  here with the same Breezy) and ours over bzr+http:// (--url);
* clients: the stock `brz`, and `brz` with the project's client plugin
  (trac_breezy/brz_plugin/trac_breezy_streaming.py, loaded with
  BRZ_PLUGINS_AT since BRZ_PLUGIN_PATH=-site:-user turns user plugins off).
  The plugin changes how request bodies go over bzr+http(s) only, so the
  reference runs with the stock client (--ref-plugin adds it with the plugin,
  to show that it is neutral there). Without the plugin file, its rows are
  skipped with a note; a plugin file that fails to load stops the run.

How:

* Set-up, per history and server, untimed: the history without its last 10
  revisions is pushed to a branch `<history>-main`, then the whole history
  to the same branch (another client's push of 10 new revisions: they land
  in a pack of their own, as in real use), then one warm-up `branch` and
  `pull` of it, whose revision counts are checked.
  `branch` and `pull` read that branch; `pull` starts every time from a fresh
  copy (shutil.copytree) of the local branch without the last 10 revisions,
  so each repeat starts from the same state. Each `push` goes to a new name
  (`<history>-push-<client>-r<round>`), which is deleted after it.
* Rounds: each round runs every cell once; within a (history, operation) the
  cells alternate server and client (brz serve, ours stock, ours plugin),
  and the order rotates by one every round, so that drift of the machine
  hits all cells alike and none is always first. --repeats rounds (5; fewer
  only for dry runs).
* Per cell: median and min-max of the rounds; the ratio is ours / brz serve
  (medians), and its range is the min and max of the per-round ratios.
* Memory: during every push, the summed RSS of the serving processes is
  sampled every 20 ms; the peak above the level just before the push is
  reported (for the container: Apache and the mod_wsgi daemons, found with
  `docker top`; for brz serve: its process). The bound is +64 MB during the
  big push.

Prints a Markdown table for docs/benchmarks.md, the memory table, the
targets and the machine; --json writes every timing. Against the container
(running, e.g. `scripts/up -d` with ADMIN_USER/ADMIN_PASSWORD set):

    .venv/bin/python bench/bzr_bench.py --url http://127.0.0.1:8080 --container NAME \\
        --user admin --password-file pw.txt --json bzr-bench.json

A full run (both histories, all operations, 5 rounds, both clients) takes
about 20 minutes on 2 cores, most of it the big push with the stock client
over bzr+http:// (~110 s each); `--skip-big-stock-push`, `--histories`,
`--ops` and `--clients` run subsets, and the script prints its estimate.
Without Docker, `--harness` serves our app from tests/smart_harness.py (a
wsgiref stand-in for Apache, one process) for a dry run; its figures are not
the container's:

    .venv/bin/python bench/bzr_bench.py --harness --histories small --repeats 2 \\
        --revisions 40 --files 30 --work /tmp/bzr-bench-dry
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from histories import make_history  # shared with the tests (tests/histories.py)
from servers import BRZ, brz_serve

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["brz", "client_env", "make_history"]  # also used by the other benches

PLUGIN_NAME = "trac_breezy_streaming"
DEFAULT_PLUGIN = ROOT / "trac_breezy" / "brz_plugin" / f"{PLUGIN_NAME}.py"
REF, OURS = "brz serve", "trac-breezy"
STOCK, PLUGIN = "stock", "plugin"
OPS = ("branch", "push", "pull")
OP_LABELS = {"branch": "branch", "push": "push (new branch)", "pull": "pull 10 revisions"}
HISTORIES = ("small", "big")
NEW_REVISIONS = 10  # what `pull` fetches
PACKS = ".bzr/repository/packs"
TARGET_RATIO = 1.05
MEMORY_BOUND_MB = 64
DASH = "\N{EN DASH}"
BRZ_TIMEOUT = 1800  # seconds; the big stock push over bzr+http:// takes ~110

# Seconds per operation on 2 cores with the default sizes (docs/benchmarks.md),
# for the printed estimate only. The plugin's big push is a guess.
TYPICAL_SECONDS = {
    ("small", "branch"): {REF: 0.9, OURS: 1.1},
    ("small", "push"): {REF: 0.8, OURS: 1.1},
    ("small", "pull"): {REF: 0.6, OURS: 0.7},
    ("big", "branch"): {REF: 1.5, OURS: 1.8},
    ("big", "push"): {REF: 15.4, OURS: 113.0},
    ("big", "pull"): {REF: 1.5, OURS: 2.0},
}
TYPICAL_BIG_PLUGIN_PUSH = 23.0


# -- running brz -----------------------------------------------------------------------


def brz(env: dict[str, str], *args: str, cwd: Path | None = None) -> float:
    """Runs `brz args`; the wall-clock seconds it took. Fails with brz's stderr."""
    started = time.perf_counter()
    result = subprocess.run(
        [BRZ, *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        timeout=BRZ_TIMEOUT,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")[-4000:]
        raise RuntimeError(f"brz {' '.join(args)} exited {result.returncode}:\n{stderr}")
    return elapsed


def client_env(
    home: Path, port: int, user: str, password: str, host: str = "127.0.0.1"
) -> dict[str, str]:
    """The stock client's environment: its own HOME, credentials for host:port, no
    user or site plugins."""
    conf = home / ".config" / "breezy"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "authentication.conf").write_text(
        f"[bench]\nscheme=http\nhost={host}\nport={port}\nuser={user}\npassword={password}\n"
    )
    (conf / "authentication.conf").chmod(0o600)
    env = {
        **os.environ,
        "HOME": str(home),
        "BRZ_EMAIL": "Bench <bench@example.org>",
        "BRZ_PLUGIN_PATH": "-site:-user",
        "BRZ_LOG": os.devnull,
    }
    env.pop("BRZ_PLUGINS_AT", None)
    return env


def revno(env: dict[str, str], location: str) -> int:
    out = subprocess.run(
        [BRZ, "revno", location], env=env, capture_output=True, text=True, check=True, timeout=300
    )
    return int(out.stdout.strip())


def expect_revno(env: dict[str, str], location: str, expected: int) -> None:
    found = revno(env, location)
    if found != expected:
        raise RuntimeError(f"{location} has {found} revisions, not {expected}")


def plugin_env(stock: dict[str, str], plugin: Path) -> dict[str, str]:
    """The stock environment plus the project's plugin (a single .py file is enough)."""
    return {**stock, "BRZ_PLUGINS_AT": f"{PLUGIN_NAME}@{plugin.resolve()}"}


def check_plugin_loads(env: dict[str, str]) -> None:
    """Stops the run unless `brz plugins` lists the plugin as loaded: the plugin
    rows would otherwise measure the stock client."""
    out = subprocess.run(
        [BRZ, "plugins"], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    for line in out.stdout.splitlines():
        if line.split()[:1] == [PLUGIN_NAME] and "failed to load" not in line:
            return
    raise SystemExit(f"the plugin {PLUGIN_NAME} did not load: {out.stderr.strip()[-2000:]}")


# -- memory ------------------------------------------------------------------------------


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class PeakRss:
    """Samples the summed RSS of some processes every 20 ms, in a thread."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak, self._stop = pids, 0, threading.Event()
        self.baseline = rss_kib(pids)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pids))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def extra_mib(self) -> float:
        return (self.peak - self.baseline) / 1024


def container_server_pids(container: str) -> list[int]:
    """Host PIDs of the container's mod_wsgi daemons and Apache processes."""
    out = subprocess.run(
        ["docker", "top", container, "-eo", "pid,args"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[1:]
    return [int(line.split()[0]) for line in out if "apache2" in line or "wsgi" in line]


# -- histories ----------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    key: str  # "small" or "big", as in --histories
    label: str  # as printed
    path: Path  # the whole history, a branch with its working tree
    older: Path  # the same without its last NEW_REVISIONS revisions, no tree
    revisions: int

    def main_branch(self) -> str:
        """The name of the branch that `branch` and `pull` read on each server."""
        return f"{self.label}-main"

    def bzr_bytes(self) -> int:
        return tree_bytes(self.path / ".bzr")


def tree_bytes(path: Path) -> int:
    """The bytes of the files below `path`."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def without_last_revisions(env: dict[str, str], path: Path, revisions: int) -> Path:
    """A cached copy (no tree) of the branch at `path` without its last NEW_REVISIONS."""
    older = path.with_name(f"{path.name}-minus{NEW_REVISIONS}")
    if not (older / ".bzr").exists():
        partial = older.with_name(older.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        revno = f"revno:{revisions - NEW_REVISIONS}"
        brz(env, "branch", "-q", "--no-tree", "-r", revno, str(path), str(partial))
        partial.rename(older)
    expect_revno(env, str(older), revisions - NEW_REVISIONS)
    return older


def make_histories(args: argparse.Namespace, env: dict[str, str]) -> list[History]:
    work, made = Path(args.work), []
    for key in args.histories:
        if key == "small":
            suffix = "" if args.files == 300 else f"-{args.files}f"
            path = make_history(
                work / f"history-{args.revisions}{suffix}", args.revisions, args.files, seed=1
            )
            label, revisions = f"{args.revisions}-revisions", args.revisions
        else:
            path = make_history(
                work / f"history-big-{args.big_blobs_per_revision}x{args.big_blob_kb}k",
                args.big_revisions,
                50,
                seed=2,
                blobs_per_rev=args.big_blobs_per_revision,
                blob_kb=args.big_blob_kb,
            )
            label, revisions = "big", args.big_revisions
        older = without_last_revisions(env, path, revisions)
        made.append(History(key, label, path, older, revisions))
    return made


# -- servers ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str  # REF or OURS
    base: str  # branch names are appended to it
    pids: Callable[[], list[int]]  # the serving processes, for the memory samples
    remove: Callable[[str], None]  # deletes a branch the bench made (untimed)
    # The bytes in a branch's .bzr/repository/packs (bench/pushed_blocks_disk.py).
    pack_bytes: Callable[[str], int] | None = None


@contextmanager
def reference_server(work: Path, run_id: str, env: dict[str, str]) -> Iterator[Server]:
    """`brz serve --allow-writes` on a fresh directory, removed at the end."""
    root = work / f"serve-{run_id}"
    root.mkdir()
    try:
        with brz_serve(root, env) as served:
            yield Server(
                REF,
                f"{served.url}/",
                lambda: [served.pid],
                lambda name: shutil.rmtree(root / name, ignore_errors=True),
                lambda name: tree_bytes(root / name / PACKS),
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def container_server(url: str, container: str, bzr_root: str, run_id: str) -> Iterator[Server]:
    """Ours in the running container: a directory of its own under BZR_ROOT,
    removed at the end with `docker exec`."""
    directory = f"{bzr_root}/bench-{run_id}"
    docker = ["docker", "exec", container]
    subprocess.run([*docker[:2], "-u", "www-data", container, "mkdir", "-p", directory], check=True)

    def remove(name: str) -> None:
        subprocess.run([*docker, "rm", "-rf", f"{directory}/{name}"], check=False)

    def pack_bytes(name: str) -> int:
        du = [*docker, "du", "-sb", f"{directory}/{name}/{PACKS}"]
        return int(subprocess.run(du, capture_output=True, text=True, check=True).stdout.split()[0])

    try:
        yield Server(
            OURS,
            f"bzr+{url}/bzr/bench-{run_id}/",
            lambda: container_server_pids(container),
            remove,
            pack_bytes,
        )
    finally:
        subprocess.run([*docker, "rm", "-rf", directory], check=False)


HARNESS_CODE = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from smart_harness import (
    USERS, QuietHandler, ThreadingWSGIServer, apache_like, chunked_bodies
)
from wsgiref.simple_server import make_server
from trac_breezy.setenv import READ_WRITE
app = chunked_bodies(apache_like(Path(sys.argv[2]), READ_WRITE))  # as WSGIChunkedRequest On
httpd = make_server("127.0.0.1", 0, app, ThreadingWSGIServer, QuietHandler)
print(json.dumps([httpd.server_port, *next(iter(USERS.items()))]), flush=True)
httpd.serve_forever()
"""


@contextmanager
def harness_server(
    work: Path, run_id: str, env: dict[str, str]
) -> Iterator[tuple[Server, str, str, str]]:
    """Ours behind tests/smart_harness.py's stand-in for Apache, in a child process
    (so that its RSS is its own); also yields its http:// URL and Basic credentials."""
    root = work / f"harness-{run_id}"
    root.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", HARNESS_CODE, str(ROOT / "tests"), str(root)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the harness did not start")
        port, user, password = json.loads(line)
        server = Server(
            OURS,
            f"bzr+http://127.0.0.1:{port}/bzr/",
            lambda: [child.pid],
            lambda name: shutil.rmtree(root / name, ignore_errors=True),
        )
        yield server, f"http://127.0.0.1:{port}", user, password
    finally:
        child.terminate()
        child.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def external_server(url: str, run_id: str, pids: list[int]) -> Server:
    """Ours at --url, without Docker: names get a per-run prefix and are left there."""
    return Server(OURS, f"bzr+{url}/bzr/bench-{run_id}-", lambda: pids, lambda name: None)


# -- cells and rounds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    history: str
    op: str
    server: str
    client: str


@dataclass
class Run:
    round: int
    history: str
    op: str
    server: str
    client: str
    seconds: float
    extra_rss_mib: float | None  # pushes only, when the serving processes are known
    at: float  # seconds since the first round started

    @property
    def cell(self) -> Cell:
        return Cell(self.history, self.op, self.server, self.client)


def plan_cells(history: History, op: str, args: argparse.Namespace, plugin: bool) -> list[Cell]:
    """The cells of one (history, operation), server and client alternating."""
    pairs = [(REF, STOCK)]
    if STOCK in args.clients and not (
        args.skip_big_stock_push and history.key == "big" and op == "push"
    ):
        pairs.append((OURS, STOCK))
    if plugin and args.ref_plugin:
        pairs.append((REF, PLUGIN))
    if plugin and PLUGIN in args.clients:
        pairs.append((OURS, PLUGIN))
    return [Cell(history.key, op, server, client) for server, client in pairs]


def rotated(cells: list[Cell], by: int) -> list[Cell]:
    by %= len(cells)
    return cells[by:] + cells[:by]


def prepare(history: History, server: Server, env: dict[str, str], scratch: Path) -> None:
    """Untimed: `<history>-main` on the server (the older part, then the last
    revisions in a second push); one warm-up branch and pull of it, checked."""
    url = server.base + history.main_branch()
    brz(env, "push", "-q", "-d", str(history.older), url)
    brz(env, "push", "-q", "-d", str(history.path), url)
    for op in ("branch", "pull"):
        run_cell(Cell(history.key, op, server.name, STOCK), -1, history, server, env, scratch)
        expect_revno(env, str(scratch), history.revisions)
        shutil.rmtree(scratch, ignore_errors=True)


def run_cell(
    cell: Cell, round_no: int, history: History, server: Server, env: dict[str, str], scratch: Path
) -> tuple[float, float | None]:
    """Times one operation; the server's extra RSS for a push (None if unknown).
    Leaves what `branch` and `pull` made in `scratch` until the next call."""
    shutil.rmtree(scratch, ignore_errors=True)
    main = server.base + history.main_branch()
    if cell.op == "branch":
        seconds = brz(env, "branch", "-q", "--no-tree", main, str(scratch))
        extra = None
    elif cell.op == "pull":
        shutil.copytree(history.older, scratch, symlinks=True)
        seconds = brz(env, "pull", "-q", "-d", str(scratch), main)
        extra = None
    else:
        name = f"{history.label}-push-{cell.client}-r{round_no}"
        pids = server.pids()
        with PeakRss(pids) as peak:
            seconds = brz(env, "push", "-q", "-d", str(history.path), server.base + name)
        extra = peak.extra_mib if pids else None
        server.remove(name)
    return seconds, extra


def typical_seconds(cell: Cell) -> float:
    if cell == Cell("big", "push", OURS, PLUGIN):
        return TYPICAL_BIG_PLUGIN_PUSH
    return TYPICAL_SECONDS[cell.history, cell.op][cell.server]


def estimate_seconds(plan: list[tuple[History, list[Cell]]], repeats: int) -> float:
    """From TYPICAL_SECONDS: the set-up pushes and the rounds (default sizes)."""
    setup = sum(
        typical_seconds(Cell(h.key, "push", server, STOCK)) + 2
        for h in {h for h, _ in plan}
        for server in (REF, OURS)
    )
    per_round = sum(typical_seconds(c) + 0.5 for _, cells in plan for c in cells)
    return setup + repeats * per_round


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def run_rounds(
    plan: list[tuple[History, list[Cell]]],
    servers: dict[str, Server],
    envs: dict[str, dict[str, str]],
    repeats: int,
    scratch: Path,
    record: Callable[[list[Run]], None],
) -> list[Run]:
    runs: list[Run] = []
    started = time.monotonic()
    histories = {h.key: h for h, _ in plan}
    for round_no in range(repeats):
        round_started = time.monotonic()
        for _, cells in plan:
            for cell in rotated(cells, round_no):
                seconds, extra = run_cell(
                    cell,
                    round_no,
                    histories[cell.history],
                    servers[cell.server],
                    envs[cell.client],
                    scratch,
                )
                at = time.monotonic() - started
                runs.append(
                    Run(round=round_no, **asdict(cell), seconds=seconds, extra_rss_mib=extra, at=at)
                )
        record(runs)
        took = time.monotonic() - round_started
        left = (repeats - round_no - 1) * (time.monotonic() - started) / (round_no + 1)
        print(
            f"round {round_no + 1}/{repeats}: {took:.0f} s; about {duration(left)} left",
            file=sys.stderr,
        )
    return runs


# -- report -------------------------------------------------------------------------------


def times_of(runs: list[Run], cell: Cell) -> dict[int, float]:
    """The cell's seconds, by round."""
    return {r.round: r.seconds for r in runs if r.cell == cell}


def extra_rss_of(runs: list[Run], cell: Cell) -> list[float]:
    return [r.extra_rss_mib for r in runs if r.cell == cell and r.extra_rss_mib is not None]


def spread(values: list[float], unit: str = "") -> str:
    if not values:
        return "not run"
    median = statistics.median(values)
    return f"{median:.2f}{unit} ({min(values):.2f}{DASH}{max(values):.2f}{unit})"


def ratios(ours: dict[int, float], ref: dict[int, float]) -> tuple[float, list[float]] | None:
    """The ratio of the medians, and the per-round (paired) ratios."""
    paired = [ours[r] / ref[r] for r in sorted(ours.keys() & ref.keys())]
    if not paired:
        return None
    return statistics.median(ours.values()) / statistics.median(ref.values()), paired


def ratio_text(ratio: tuple[float, list[float]] | None) -> str:
    if ratio is None:
        return DASH
    median, paired = ratio
    return f"{median:.2f}x ({min(paired):.2f}{DASH}{max(paired):.2f}x)"


def reference_for(
    runs: list[Run], history: str, op: str, client: str
) -> tuple[dict[int, float], bool]:
    """brz serve's times for a row: with the row's client if measured, else the
    stock client (the plugin changes nothing over bzr://); True if the latter."""
    same = times_of(runs, Cell(history, op, REF, client))
    if same:
        return same, False
    return times_of(runs, Cell(history, op, REF, STOCK)), client != STOCK


def time_table(
    runs: list[Run], histories: list[History], ops: list[str], clients: list[str]
) -> list[str]:
    lines = [
        "| history | operation | client | brz serve (s) | trac-breezy (s) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    substituted = False
    for history in histories:
        for op in ops:
            for client in clients:
                ours = times_of(runs, Cell(history.key, op, OURS, client))
                ref, stock_ref = reference_for(runs, history.key, op, client)
                if not ours and not ref:
                    continue
                substituted |= stock_ref
                mark = " *" if stock_ref else ""
                lines.append(
                    f"| {history.label} | {OP_LABELS[op]} | {client} | "
                    f"{spread(list(ref.values()))}{mark} | {spread(list(ours.values()))} | "
                    f"{ratio_text(ratios(ours, ref))} |"
                )
    if substituted:
        lines.append(
            "\n\\* brz serve with the stock client: the plugin changes nothing over bzr://."
        )
    return lines


def memory_table(runs: list[Run], histories: list[History], clients: list[str]) -> list[str]:
    lines = [
        "| history | client | brz serve (MiB) | trac-breezy (MiB) |",
        "|---|---|---|---|",
    ]
    for history in histories:
        for client in clients:
            ours = extra_rss_of(runs, Cell(history.key, "push", OURS, client))
            ref = extra_rss_of(runs, Cell(history.key, "push", REF, client))
            mark = ""
            if not ref and client != STOCK:  # as in the time table
                ref, mark = extra_rss_of(runs, Cell(history.key, "push", REF, STOCK)), " *"
            if not ours and not ref:
                continue
            lines.append(
                f"| {history.label} | {client} | {peak_text(ref)}{mark} | {peak_text(ours)} |"
            )
    return lines


def peak_text(values: list[float]) -> str:
    return f"{max(values):.1f} (median {statistics.median(values):.1f})" if values else DASH


def targets(runs: list[Run], histories: list[History]) -> list[str]:
    """The done-criterion, on the medians."""
    lines = []
    for op, client in (("branch", STOCK), ("push", PLUGIN)):
        for history in histories:
            ref, _ = reference_for(runs, history.key, op, client)
            ratio = ratios(times_of(runs, Cell(history.key, op, OURS, client)), ref)
            if ratio is None:
                lines.append(f"- {op}, {client} client, {history.label}: not measured")
                continue
            verdict = "met" if ratio[0] <= TARGET_RATIO else "NOT met"
            lines.append(
                f"- {op}, {client} client, {history.label}: {ratio_text(ratio)} "
                f"(target <= {TARGET_RATIO}x on the median): {verdict}"
            )
    for history in histories:
        if history.key != "big":
            continue
        for client in (STOCK, PLUGIN):
            extra = extra_rss_of(runs, Cell("big", "push", OURS, client))
            if extra:
                peak_mb = max(extra) * 1024 * 1024 / 1e6
                verdict = "met" if peak_mb <= MEMORY_BOUND_MB else "NOT met"
                lines.append(
                    f"- server memory during the big push, {client} client: "
                    f"+{peak_mb:.1f} MB at most (bound +{MEMORY_BOUND_MB} MB): {verdict}"
                )
    return lines


def machine_info() -> dict[str, Any]:
    import breezy

    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "memory_gib": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "brz": breezy.version_string,
        "loadavg": os.getloadavg(),
    }


def plugin_info(path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}


# -- main ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="our server (http://)")
    parser.add_argument(
        "--container", default="", help="the running container ('' = no Docker: no cleanup)"
    )
    parser.add_argument("--bzr-root", default="/srv/bzr", help="the container's BZR_ROOT")
    parser.add_argument(
        "--harness",
        action="store_true",
        help="serve ours from tests/smart_harness.py here (dry run; ignores --url)",
    )
    parser.add_argument(
        "--server-pids", default="", help="without --container: our serving PIDs, comma-separated"
    )
    parser.add_argument("--user", default="")
    parser.add_argument("--password-file", default="")
    parser.add_argument("--work", default="/var/tmp/trac-breezy-bench")
    parser.add_argument("--json", default="", help="write every timing here")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (every cell once each)")
    parser.add_argument("--histories", default=",".join(HISTORIES), help="small,big")
    parser.add_argument("--ops", default=",".join(OPS), help="branch,push,pull")
    parser.add_argument("--clients", default=f"{STOCK},{PLUGIN}", help="ours with: stock,plugin")
    parser.add_argument("--plugin", default=str(DEFAULT_PLUGIN), help="the client plugin's file")
    parser.add_argument(
        "--ref-plugin", action="store_true", help="also brz serve with the plugin (neutral there)"
    )
    parser.add_argument(
        "--skip-big-stock-push",
        action="store_true",
        help="no big push with the stock client to ours (~110 s each)",
    )
    parser.add_argument("--revisions", type=int, default=1000)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--big-revisions", type=int, default=30)
    parser.add_argument("--big-blobs-per-revision", type=int, default=100)
    parser.add_argument("--big-blob-kb", type=int, default=100)
    args = parser.parse_args()
    args.histories = checked_list(parser, "--histories", args.histories, HISTORIES)
    args.ops = checked_list(parser, "--ops", args.ops, OPS)
    args.clients = checked_list(parser, "--clients", args.clients, (STOCK, PLUGIN))
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.repeats < 5:
        print(f"note: {args.repeats} rounds: a dry run, not a measurement", file=sys.stderr)
    if min(args.revisions, args.big_revisions) <= NEW_REVISIONS:
        parser.error(f"histories need more than {NEW_REVISIONS} revisions (pull fetches them)")
    if not args.harness and not (args.user and args.password_file):
        parser.error("--user and --password-file are needed (or --harness)")
    return args


def checked_list(
    parser: argparse.ArgumentParser, flag: str, value: str, allowed: tuple[str, ...]
) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        parser.error(f"{flag}: choose from {','.join(allowed)}, not {value!r}")
    return [v for v in allowed if v in items]  # canonical order


def available_plugin(args: argparse.Namespace) -> Path | None:
    """The plugin's file if its rows are wanted and it exists (a note otherwise)."""
    if PLUGIN not in args.clients and not args.ref_plugin:
        return None
    path = Path(args.plugin).resolve()
    if path.is_file():
        return path
    print(f"note: no plugin at {path}: the plugin rows are skipped", file=sys.stderr)
    return None


@contextmanager
def our_server(
    args: argparse.Namespace, run_id: str, env: dict[str, str]
) -> Iterator[tuple[Server, str, str, str]]:
    """Ours, its http:// URL and the credentials to push with."""
    if args.harness:
        with harness_server(Path(args.work), run_id, env) as served:
            yield served
        return
    url = args.url.rstrip("/")
    password = Path(args.password_file).read_text().strip()
    if args.container:
        with container_server(url, args.container, args.bzr_root, run_id) as server:
            yield server, url, args.user, password
        return
    pids = [int(p) for p in args.server_pids.split(",") if p.strip()]
    print(
        f"note: no container: branches stay at {url}/bzr/bench-{run_id}-*"
        + ("" if pids else "; our server's memory is not measured"),
        file=sys.stderr,
    )
    yield external_server(url, run_id, pids), url, args.user, password


def print_report(
    runs: list[Run],
    histories: list[History],
    args: argparse.Namespace,
    machine: dict[str, Any],
    plugin: Path | None,
) -> None:
    clients = [STOCK, PLUGIN] if plugin else [STOCK]
    sizes = ", ".join(
        f"{h.label}: {h.revisions} revisions, {h.bzr_bytes() / 1e6:.0f} MB in .bzr"
        for h in histories
    )
    print(
        f"\n{sizes}. Seconds: median (min{DASH}max) of {args.repeats} interleaved rounds; "
        f"ratio = trac-breezy / brz serve, of the medians (min{DASH}max of the "
        "per-round ratios).\n"
    )
    print("\n".join(time_table(runs, histories, args.ops, clients)))
    if "push" in args.ops:
        print(
            "\nExtra server RSS during the push: max over the rounds (median), summed over "
            "the serving processes, above their level just before the push.\n"
        )
        print("\n".join(memory_table(runs, histories, clients)))
    print("\nTargets:\n")
    print("\n".join(targets(runs, histories)))
    info = plugin_info(plugin)
    plugin_note = f"plugin {info['path']} (sha256 {info['sha256']})" if info else "no plugin"
    load = ", ".join(f"{x:.2f}" for x in machine["loadavg"])
    print(
        f"\nMachine: {machine['nproc']} cores, {machine['memory_gib']} GiB, "
        f"{machine['platform']}, Python {machine['python']}, brz {machine['brz']}, "
        f"{machine['date']}, load average at start {load}; {plugin_note}."
    )


def main() -> int:
    args = parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    run_id = str(int(time.time()))
    machine = machine_info()
    plugin = available_plugin(args)
    started = time.monotonic()
    with ExitStack() as stack:
        bare = client_env(work / "home", 0, "", "")
        ours, url, user, password = stack.enter_context(our_server(args, run_id, bare))
        parts = urlsplit(url)
        stock = client_env(
            work / "home", parts.port or 80, user, password, parts.hostname or "127.0.0.1"
        )
        envs = {STOCK: stock}
        if plugin:
            envs[PLUGIN] = plugin_env(stock, plugin)
            check_plugin_loads(envs[PLUGIN])
        histories = make_histories(args, stock)
        print(f"histories ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
        plan = [
            (h, plan_cells(h, op, args, plugin is not None)) for h in histories for op in args.ops
        ]
        estimate = estimate_seconds(plan, args.repeats)
        print(
            f"estimate: about {duration(estimate)} (typical times of the default sizes)",
            file=sys.stderr,
        )
        ref = stack.enter_context(reference_server(work, run_id, stock))
        servers = {REF: ref, OURS: ours}
        scratch = work / f"scratch-{run_id}"
        stack.callback(shutil.rmtree, scratch, True)
        for history in histories:
            for server in (ref, ours):
                prepare(history, server, stock, scratch)
        print(f"set-up done at {time.monotonic() - started:.0f} s", file=sys.stderr)

        sizes = {h.key: h.bzr_bytes() for h in histories}

        def record(runs: list[Run]) -> None:
            if args.json:
                Path(args.json).write_text(
                    json.dumps(
                        {
                            "machine": machine,
                            "plugin": plugin_info(plugin),
                            "args": vars(args),
                            "histories": {
                                h.key: {
                                    "label": h.label,
                                    "revisions": h.revisions,
                                    "bzr_bytes": sizes[h.key],
                                }
                                for h in histories
                            },
                            "runs": [asdict(r) for r in runs],
                        },
                        indent=1,
                    )
                )

        runs = run_rounds(plan, servers, envs, args.repeats, scratch, record)
    print(f"total {time.monotonic() - started:.0f} s", file=sys.stderr)
    print_report(runs, histories, args, machine, plugin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
