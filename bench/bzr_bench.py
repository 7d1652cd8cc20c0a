"""Benchmark: our smart server over bzr+http:// against `brz serve` over bzr://.

Measures, in one run and on the same data:

* `brz branch` from the server and `brz push` of a new branch to it, for a
  synthetic history of ~1,000 revisions over a few hundred files, and for a
  "big" history of a few hundred MB (mostly incompressible blobs);
* the extra memory (peak RSS above the idle level, summed over the serving
  processes) while the big history is pushed.

The histories are deterministic (a fixed seed) and cached under --work. The
container must already run (e.g. `scripts/up -d` with ADMIN_USER/ADMIN_PASSWORD
set); `brz serve --allow-writes` is started here, on the host, with the same
brz. Prints a Markdown table for docs/benchmarks.md.

    python bench/bzr_bench.py --url http://127.0.0.1:8080 --container NAME \\
        --user admin --password-file pw.txt
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from histories import make_history  # shared with the tests (tests/histories.py)
from servers import BRZ, brz_serve

# -- measuring ---------------------------------------------------------------------


def brz(env: dict[str, str], *args: str, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        [BRZ, *args],
        env=env,
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


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


def client_env(home: Path, port: int, user: str, password: str) -> dict[str, str]:
    conf = home / ".config" / "breezy"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "authentication.conf").write_text(
        f"[bench]\nscheme=http\nhost=127.0.0.1\nport={port}\nuser={user}\npassword={password}\n"
    )
    (conf / "authentication.conf").chmod(0o600)
    return {
        **os.environ,
        "HOME": str(home),
        "BRZ_EMAIL": "Bench <bench@example.org>",
        "BRZ_PLUGIN_PATH": "-site:-user",
        "BRZ_LOG": os.devnull,
    }


def measure(
    name: str,
    source: Path,
    ours: str,
    ref: str,
    env,
    work: Path,
    repeats: int,
    pids_ours: list[int],
    pids_ref: list[int],
) -> list[dict]:
    rows = []
    for label, base, pids in (
        ("bzr+http (ours)", ours, pids_ours),
        ("bzr:// brz serve", ref, pids_ref),
    ):
        warm = f"{base}/{name}-warmup"  # a fresh server's first requests are not measured
        brz(env, "push", "-q", "-d", str(source), warm)
        shutil.rmtree(work / "warmup", ignore_errors=True)
        brz(env, "branch", "-q", "--no-tree", warm, str(work / "warmup"))
        shutil.rmtree(work / "warmup", ignore_errors=True)
        push_times, branch_times, mem = [], [], []
        for i in range(repeats):
            target = f"{base}/{name}-{i}"
            with PeakRss(pids) as peak:
                push_times.append(brz(env, "push", "-q", "-d", str(source), target))
            mem.append(peak.extra_mib)
            out = work / f"{name}-{label[:3]}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            branch_times.append(brz(env, "branch", "-q", "--no-tree", target, str(out)))
            shutil.rmtree(out, ignore_errors=True)
        rows.append(
            {
                "history": name,
                "server": label,
                "push": statistics.median(push_times),
                "branch": statistics.median(branch_times),
                "push_extra_mib": max(mem),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--container", required=True, help="name of the running container")
    parser.add_argument("--bzr-root", default="/srv/bzr", help="the container's BZR_ROOT")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--work", default="/var/tmp/trac-breezy-bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--revisions", type=int, default=1000)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--big-revisions", type=int, default=30)
    parser.add_argument("--big-blobs-per-revision", type=int, default=100)
    parser.add_argument("--big-blob-kb", type=int, default=100)
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    port = int(args.url.rsplit(":", 1)[1].split("/")[0])
    env = client_env(work / "home", port, args.user, Path(args.password_file).read_text().strip())
    started = time.monotonic()
    small = make_history(work / "history-1000", args.revisions, args.files, seed=1)
    big = make_history(
        work / f"history-big-{args.big_blobs_per_revision}x{args.big_blob_kb}k",
        args.big_revisions,
        50,
        seed=2,
        blobs_per_rev=args.big_blobs_per_revision,
        blob_kb=args.big_blob_kb,
    )
    print(f"histories ready in {time.monotonic() - started:.0f} s", file=sys.stderr)

    run_id = str(int(time.time()))
    subprocess.run(
        [
            "docker",
            "exec",
            "-u",
            "www-data",
            args.container,
            "mkdir",
            "-p",
            f"{args.bzr_root}/bench-{run_id}",
        ],
        check=True,
    )
    serve_root = work / f"serve-{run_id}"
    serve_root.mkdir()
    try:
        with brz_serve(serve_root, env) as served:
            ours = f"bzr+{args.url.rstrip('/')}/bzr/bench-{run_id}"
            pids_ours = container_server_pids(args.container)
            rows = []
            for name, source in (("1000-revisions", small), ("big", big)):
                rows += measure(
                    name, source, ours, served.url, env, work, args.repeats, pids_ours, [served.pid]
                )
    finally:
        shutil.rmtree(serve_root, ignore_errors=True)
        subprocess.run(
            ["docker", "exec", args.container, "rm", "-rf", f"{args.bzr_root}/bench-{run_id}"],
            check=False,
        )

    size = subprocess.run(
        ["du", "-sh", str(big / ".bzr")], capture_output=True, text=True
    ).stdout.split()[0]
    print(
        f"\nbig history: {args.big_revisions} revisions, {size} in .bzr; "
        f"median of {args.repeats} runs; ratio = ours / brz serve\n"
    )
    print("| history | server | push (s) | branch (s) | extra server RSS during push (MiB) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['history']} | {row['server']} | {row['push']:.2f} | {row['branch']:.2f} | "
            f"{row['push_extra_mib']:.1f} |"
        )
    for name in ("1000-revisions", "big"):
        ours_row, ref_row = (r for r in rows if r["history"] == name)
        print(
            f"| {name} | **ratio** | **{ours_row['push'] / ref_row['push']:.2f}x** | "
            f"**{ours_row['branch'] / ref_row['branch']:.2f}x** | |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
