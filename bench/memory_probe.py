"""Memory probe: Trac pages, pulls and pushes of one Bazaar branch, in ONE process.

Why this exists: the daemons of the image grew without bound under a mixed
load (Trac pages of a Bazaar repository, anonymous pulls, pushes), and the
cause has to be found where the tools can see it: tracemalloc and the
garbage collector only see the process they run in, and Docker is not
needed to run the two apps. This probe serves both apps the way the image
does, in one process, and drives the same mixed load at it over loopback:

* the server: Trac's `dispatch_request` wrapped as `wsgi/trac.wsgi` wraps it
  (`FreezeHeapWhenWarm`), and the smart server as `wsgi/bzr.wsgi` wires it
  (tip changes announced to Trac), behind `tests/smart_harness.apache_like`
  (SetEnv keys, Basic auth), on a pool of request threads like one mod_wsgi
  daemon process (15 threads);
* the data: a branch of ~1,000 revisions over a few hundred files with some
  merges (`bzr_bench.make_history`, plus merges), the default repository of
  a Trac project; per-pusher copies of it in a folder that the project shows
  as a second repository, so every push is announced to Trac;
* the load: reader threads fetching Trac pages (browser root, revision log,
  timeline, changesets and a file at old revisions), pullers running the real
  `brz branch` client, pushers committing and pushing with credentials;
* the report: the RSS of the process over time (start, warm, end, after an
  idle pause, slope after warm-up), the frozen-object count, tracemalloc's
  top differences between a snapshot after warm-up and one at the end
  (by traceback and by file), live objects by type, and how much frozen
  garbage one unfreeze + collection frees at the end.

The histories are built once in a child process (cached under --work), the
Trac project and the served tree are made fresh every run. Everything is
bounded in time (--duration) and count (--max-ops), and only 127.0.0.1 is
used. Both apps share one process here, as in one mod_wsgi daemon group:
the harder case for the GC freeze, which sees the requests of both.

    .venv/bin/python bench/memory_probe.py --duration 600 --warmup 90
    .venv/bin/python bench/memory_probe.py --pullers 0 --pushers 0 --duration 120 \\
        --tracemalloc-frames 1

tracemalloc makes the load several times slower (with many frames, Trac
pages take tens of seconds): RSS figures come from runs without it, the
tracemalloc differences from short runs with few frames.

Measured on 2 cores (Python 3.11, default parameters, 600 s, RSS in MB):

    before: start 71, 90 s 944, 5 min 2139, 10 min 3345 (+260 MB/min from 5 to
            10 min), 2,418 repositories alive at the end; 1,583 pages, 166
            pushes, 280 pulls
    after:  start 71, 90 s 332, 5 min 373, 10 min 405, 20 min 434 (+4.8 MB/min
            from 5 to 10 min, +2.3 from 10 to 20: bounded caches filling);
            2,250 pages, 230 pushes, 375 pulls in the first 10 min
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
from servers import BRZ  # noqa: E402

PROJECT = "proj"
PUSHERS_DIR = "pushers"
T_MERGE = 1.7e9 + 10_000 * 60  # merges are committed after make_history's revisions


# -- data: histories (child process) and the served tree ------------------------------


def make_merged_history(work: Path, revisions: int, files: int, merges: int) -> Path:
    """`make_history`'s branch plus `merges` rounds of side commits merged back."""
    from bzr_bench import make_history

    base = make_history(work / f"history-{revisions}", revisions, files, seed=1)
    target = work / f"history-{revisions}-{merges}merges"
    if (target / ".bzr").exists() or not merges:
        return target if merges else base
    import breezy.bzr  # noqa: F401 - registers the Bazaar formats
    from breezy import controldir
    from breezy.commit import NullCommitReporter

    rng = random.Random(7)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    trunk = controldir.ControlDir.open(str(base)).sprout(str(partial)).open_workingtree()
    names = [f"dir{i % 20}/file{i}.txt" for i in range(files)]
    when = iter(range(10**6))

    def commit(tree: Any, message: str, side: bool) -> None:
        for name in rng.sample(names[side::2], 3):  # never both sides: no conflicts
            with open(Path(tree.basedir) / name, "a") as f:
                f.write(f"{message} {rng.random()}\n")
        tree.commit(
            message,
            committer="Side <side@example.org>",
            timestamp=T_MERGE + next(when) * 60,
            timezone=0,
            reporter=NullCommitReporter(),
        )

    for k in range(merges):
        side_path = partial.with_name(f"side-{k}")
        side = trunk.controldir.sprout(str(side_path)).open_workingtree()
        commit(side, f"side {k} first", True)
        commit(side, f"side {k} second", True)
        commit(trunk, f"trunk before merge {k}", False)
        trunk.merge_from_branch(side.branch)
        trunk.commit(
            f"merge side {k}",
            committer="Bench <bench@example.org>",
            timestamp=T_MERGE + next(when) * 60,
            timezone=0,
            reporter=NullCommitReporter(),
        )
        shutil.rmtree(side_path)
    partial.rename(target)
    return target


def brz_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOME": str(home),
        "BRZ_EMAIL": "Probe <probe@example.org>",
        "BRZ_PLUGIN_PATH": "-site:-user",
        "BRZ_LOG": os.devnull,
    }


def run_brz(env: dict[str, str], *args: str, cwd: Path | None = None) -> None:
    subprocess.run(
        [BRZ, *args],
        env=env,
        cwd=cwd,
        check=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def make_tree(args: argparse.Namespace, run: Path, history: Path) -> None:
    """The served tree (trunk + per-pusher branches) and the pushers' checkouts."""
    env = brz_env(run / "home-client")
    trunk = run / "bzr" / PROJECT / "trunk"
    trunk.parent.mkdir(parents=True)
    run_brz(env, "branch", "-q", "--no-tree", str(history), str(trunk))
    for n in range(args.pushers):
        served = run / "bzr" / PROJECT / PUSHERS_DIR / f"pusher-{n}"
        served.parent.mkdir(parents=True, exist_ok=True)
        run_brz(env, "branch", "-q", "--no-tree", str(trunk), str(served))
        run_brz(env, "branch", "-q", str(served), str(run / f"pusher-{n}"))


def make_trac_project(run: Path) -> None:
    """A Trac project showing trunk (default) and the pushers' folder, with ticket #1."""
    from trac.env import Environment
    from trac.ticket.model import Ticket
    from trac.versioncontrol.api import DbRepositoryProvider

    # the image loads our components by entry point; here they are imported
    import trac_breezy.trac_app.bzr.connector
    import trac_breezy.trac_app.logout  # noqa: F401

    (run / "trac").mkdir()
    env = Environment(
        str(run / "trac" / PROJECT),
        create=True,
        options=[
            ("components", "trac_breezy.*", "enabled"),
            ("components", "tracopt.ticket.commit_updater.*", "enabled"),
        ],
    )
    provider = DbRepositoryProvider(env)
    provider.add_repository("", str(run / "bzr" / PROJECT / "trunk"), "bzr")
    provider.add_repository("pushes", str(run / "bzr" / PROJECT / PUSHERS_DIR), "bzr")
    ticket = Ticket(env)
    ticket.populate({"summary": "pushed to", "reporter": "probe", "status": "new"})
    ticket.insert()
    env.shutdown()


# -- the server: both apps in this process, a fixed pool of request threads -------


class PoolWSGIServer(WSGIServer):
    """wsgiref's server with a fixed pool of request threads, as one mod_wsgi daemon."""

    def __init__(self, threads: int, app: Callable[..., Any]) -> None:
        from smart_harness import QuietHandler

        super().__init__(("127.0.0.1", 0), QuietHandler)
        self.set_app(app)
        self.request_queue_size = 64
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="wsgi")

    def process_request(self, request: Any, client_address: Any) -> None:
        self.pool.submit(self._serve, request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def serving_app(run: Path) -> Callable[..., Any]:
    """/trac/... to trac.wsgi's application, anything else to bzr.wsgi's, SetEnv as Apache."""
    import runpy

    from smart_harness import apache_like

    from trac_breezy.setenv import READ_WRITE, TracEnviron

    trac_app = runpy.run_path(str(ROOT / "wsgi" / "trac.wsgi"))["application"]
    runpy.run_path(str(ROOT / "wsgi" / "bzr.wsgi"))  # preload + tip changes -> Trac
    bzr_app = apache_like(run / "bzr", READ_WRITE, run / "trac")
    trac_setenv = TracEnviron(env_parent_dir=str(run / "trac")).setenv()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ["PATH_INFO"]
        if path.startswith("/trac/"):
            environ["SCRIPT_NAME"], environ["PATH_INFO"] = "/trac", path[len("/trac") :]
            environ.update(trac_setenv)
            return trac_app(environ, start_response)
        return bzr_app(environ, start_response)

    return app


# -- the load ----------------------------------------------------------------------


class Load:
    """Client threads until the deadline or --max-ops operations, counting what they did."""

    def __init__(self, args: argparse.Namespace, run: Path, port: int) -> None:
        self.args, self.run, self.port = args, run, port
        self.base = f"http://127.0.0.1:{port}"
        self.deadline = time.monotonic() + args.duration
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []
        self.seconds: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def _running(self) -> bool:
        return time.monotonic() < self.deadline and sum(self.counts.values()) < self.args.max_ops

    def _count(self, what: str, error: str | None = None) -> None:
        with self._lock:
            self.counts[what if error is None else "error"] += 1
            if error is not None and len(self.errors) < 20:
                self.errors.append(f"{what}: {error}")

    def _loop(self, what: str, step: Callable[[int], None]) -> None:
        i = 0
        while self._running():
            started = time.monotonic()
            try:
                step(i)
                self._count(what)
                with self._lock:
                    self.seconds[what] += time.monotonic() - started
            except Exception as e:  # counted and shown, the load goes on
                self._count(what, repr(e)[:300])
                time.sleep(0.5)
            i += 1

    def start(self) -> None:
        revnos = int(self.args.revisions) + 2 * int(self.args.merges)  # mainline revnos
        for n in range(self.args.readers):
            rng = random.Random(n)
            self._spawn("page", lambda i, rng=rng: self._page(rng, i, revnos))
        client_env = brz_env(self.run / "home-client")
        for n in range(self.args.pullers):
            self._spawn("pull", lambda i, n=n: self._pull(client_env, n, i))
        pusher_env = brz_env(self.run / "home-pusher")
        conf = self.run / "home-pusher" / ".config" / "breezy" / "authentication.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"[probe]\nscheme=http\nhost=127.0.0.1\nport={self.port}\n"
            "user=alice\npassword=wonderland\n"
        )
        for n in range(self.args.pushers):
            self._spawn("push", lambda i, n=n: self._push(pusher_env, n, i))

    def _spawn(self, what: str, step: Callable[[int], None]) -> None:
        thread = threading.Thread(target=self._loop, args=(what, step), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _page(self, rng: random.Random, i: int, revnos: int) -> None:
        old = rng.randint(1, revnos)
        pages = (
            "/browser",
            "/log/",
            "/timeline?from=2023-11-15&daysback=2&changeset=on",
            f"/changeset/{rng.randint(2, revnos)}",
            f"/browser/dir{old % 20}/file{old % 300}.txt?rev={old}",
        )
        url = f"{self.base}/trac/{PROJECT}{pages[i % len(pages)]}"
        with urllib.request.urlopen(url, timeout=300) as response:
            response.read()

    def _pull(self, env: dict[str, str], n: int, i: int) -> None:
        target = self.run / f"pulled-{n}"
        shutil.rmtree(target, ignore_errors=True)
        url = f"bzr+{self.base}/bzr/{PROJECT}/trunk"
        run_brz(env, "branch", "-q", "--no-tree", url, str(target))
        shutil.rmtree(target, ignore_errors=True)

    def _push(self, env: dict[str, str], n: int, i: int) -> None:
        tree = self.run / f"pusher-{n}"
        with open(tree / "dir0" / "file0.txt", "a") as f:
            f.write(f"push {n}.{i}\n")
        run_brz(env, "commit", "-q", "-m", f"probe push {n}.{i}, refs #1", cwd=tree)
        url = f"bzr+{self.base}/bzr/{PROJECT}/{PUSHERS_DIR}/pusher-{n}"
        run_brz(env, "push", "-q", url, cwd=tree)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=max(0.0, self.deadline - time.monotonic()) + 600)


# -- measuring -----------------------------------------------------------------------


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def quiesce() -> None:
    """Wait for the announcements of the last pushes and the last responses."""
    from trac_breezy.trac_app import push_announcer

    push_announcer.wait_for_announcements()
    time.sleep(1)


def type_counts() -> collections.Counter[str]:
    """Live objects the collector tracks (frozen ones excluded), by type name.

    Only while no request runs (see `Sampler`)."""
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def live_repositories() -> int:
    """Breezy pack repositories alive (after a collection): each request's are dropped."""
    from breezy.bzr.pack_repo import PackRepository

    return sum(1 for o in gc.get_objects() if issubclass(type(o), PackRepository))


def slope_mb_per_min(samples: list[dict[str, float]], since: float) -> float:
    """Least-squares slope of RSS over time, from `since` on."""
    points = [(s["t"], s["rss_mb"]) for s in samples if s["t"] >= since]
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_r = sum(r for _, r in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    cov = sum((t - mean_t) * (r - mean_r) for t, r in points)
    return 60 * cov / var if var else 0.0


class Sampler(threading.Thread):
    """RSS, frozen objects and threads every `every` seconds, as JSON lines.

    Never `gc.get_objects()` while the load runs: the list it returns holds
    the tuples other threads are building, which makes CPython fail them
    (SystemError, bad argument to internal function).
    """

    def __init__(self, every: float, load: Load, out: Any) -> None:
        super().__init__(daemon=True)
        self.every, self.load, self.out = every, load, out
        self.samples: list[dict[str, float]] = []
        self.started = time.monotonic()
        self._halt = threading.Event()

    def sample(self) -> dict[str, float]:
        s = {
            "t": round(time.monotonic() - self.started, 1),
            "rss_mb": round(rss_mb(), 1),
            "frozen": gc.get_freeze_count(),
            "threads": threading.active_count(),
            "traced_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 1),
            **{k: float(v) for k, v in self.load.counts.items()},
        }
        self.samples.append(s)
        print(json.dumps(s), file=self.out, flush=True)
        return s

    def run(self) -> None:
        while not self._halt.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()


def print_diff(first: Any, second: Any, args: argparse.Namespace) -> None:
    filters = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, __file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    ]
    first, second = first.filter_traces(filters), second.filter_traces(filters)
    total = sum(s.size_diff for s in second.compare_to(first, "filename"))
    print(f"\n## tracemalloc: {total / 2**20:+.1f} MB traced between warm and end")
    print("\n### by file")
    for stat in second.compare_to(first, "filename")[: args.top]:
        frame = stat.traceback[0]
        print(f"{stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+8d} blocks  {frame.filename}")
    print("\n### by traceback (newest frame last)")
    for stat in second.compare_to(first, "traceback")[: args.top]:
        print(f"\n{stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+8d} blocks")
        for line in stat.traceback.format(limit=args.frames_shown):
            print("   ", line)


def report(args: argparse.Namespace, sampler: Sampler, load: Load, marks: dict[str, Any]) -> None:
    samples = sampler.samples
    warm = marks["warm"]
    end = marks["end"]
    print(
        f"\n## RSS (MB): start {marks['start']['rss_mb']:.0f}, warm {warm['rss_mb']:.0f} "
        f"(t={warm['t']:.0f} s), end {end['rss_mb']:.0f} (t={end['t']:.0f} s), "
        f"max {max(s['rss_mb'] for s in samples):.0f}, after idle {marks['idle']['rss_mb']:.0f}"
    )
    growth = (end["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"] * 100
    print(
        f"   end vs warm {growth:+.0f} %; slope after warm-up "
        f"{slope_mb_per_min(samples, warm['t']):+.1f} MB/min; "
        f"second half {slope_mb_per_min(samples, (warm['t'] + end['t']) / 2):+.1f} MB/min"
    )
    print(f"   operations: {dict(load.counts)}")
    mean = {k: round(v / load.counts[k], 2) for k, v in load.seconds.items()}
    print(f"   mean seconds per operation: {mean}")
    for error in load.errors[:5]:
        print(f"   error: {error}")
    frozen = marks["frozen_garbage"]
    print(
        f"\n## GC freeze at the end: {frozen['frozen']} frozen objects; unfreeze + collect "
        f"freed {frozen['collected']} unreachable objects, RSS {frozen['rss_before']:.0f} -> "
        f"{frozen['rss_after']:.0f} MB; {frozen['repositories']} Breezy repositories alive"
    )
    grown = marks["types_end"] - marks["types_start"]
    print("\n## tracked objects by type, growth start -> end (objgraph's growth)")
    for name, count in grown.most_common(args.top):
        print(f"{count:+9d}  {name}  (now {marks['types_end'][name]})")
    if marks.get("snapshots"):
        print_diff(*marks["snapshots"], args)


def probe(args: argparse.Namespace) -> int:
    work = Path(args.work)
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    # the server's Breezy as in the image: no user config, no log file
    os.environ.update(HOME=str(run / "home-server"), BRZ_LOG=os.devnull)
    os.environ["BRZ_PLUGIN_PATH"] = "-site:-user"
    history = Path(
        subprocess.run(
            [sys.executable, __file__, "--prepare-only", *sys.argv[1:]],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    make_tree(args, run, history)
    make_trac_project(run)
    server = PoolWSGIServer(args.threads, serving_app(run))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    load = Load(args, run, server.server_address[1])
    marks: dict[str, Any] = {}
    with open(run / "samples.jsonl", "w") as out:
        sampler = Sampler(args.sample_every, load, out)
        if args.tracemalloc_frames:
            tracemalloc.start(args.tracemalloc_frames)
        marks["start"] = sampler.sample()
        marks["types_start"] = type_counts()  # idle: no request runs yet
        sampler.start()
        load.start()
        time.sleep(min(args.warmup, args.duration))
        marks["warm"] = sampler.sample()
        first = tracemalloc.take_snapshot() if args.tracemalloc_frames else None
        load.join()
        marks["end"] = sampler.sample()
        quiesce()
        marks["types_end"] = type_counts()
        if first is not None:
            marks["snapshots"] = (first, tracemalloc.take_snapshot())
        time.sleep(args.idle)
        marks["idle"] = sampler.sample()
        sampler.stop()
    server.shutdown()
    rss_before, count = rss_mb(), gc.get_freeze_count()
    gc.unfreeze()
    collected = gc.collect()
    marks["frozen_garbage"] = {
        "frozen": count,
        "collected": collected,
        "rss_before": rss_before,
        "rss_after": rss_mb(),
        "repositories": live_repositories(),
    }
    report(args, sampler, load, marks)
    print(f"\nsamples: {run / 'samples.jsonl'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/var/tmp/trac-breezy-memprobe")
    parser.add_argument("--revisions", type=int, default=900, help="make_history's revisions")
    parser.add_argument("--merges", type=int, default=25, help="rounds of 2 side commits merged")
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--duration", type=float, default=300, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before the warm mark")
    parser.add_argument("--idle", type=float, default=15, help="seconds after the load")
    parser.add_argument("--max-ops", type=int, default=200_000, help="client operations at most")
    parser.add_argument("--threads", type=int, default=15, help="request threads (mod_wsgi's)")
    parser.add_argument("--readers", type=int, default=4, help="threads fetching Trac pages")
    parser.add_argument("--pullers", type=int, default=6, help="`brz branch` clients")
    parser.add_argument("--pushers", type=int, default=2, help="commit + push clients")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument(
        "--tracemalloc-frames", type=int, default=0, help="0: off; 1-4 keep the load usable"
    )
    parser.add_argument("--frames-shown", type=int, default=8)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare_only:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        print(make_merged_history(work, args.revisions, args.files, args.merges))
        return 0
    return probe(args)


if __name__ == "__main__":
    sys.exit(main())
