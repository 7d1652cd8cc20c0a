"""Benchmark: the effect of patches/breezy-3.3.23-http-smart-request-body.patch on `brz push`.

Why: Breezy 3.3.23's HTTP smart client builds each request body with
`self._buffer += bytes`, once per stream part, so a big push over bzr+http://
copies the body quadratically before the first byte is sent. The patch joins
the parts once. This measures what that is worth for a user, on the same data
and in the same run:

* the stock client (the installed Breezy) pushing over bzr+http://;
* the patched client (a copy of the installed Breezy with the patch applied,
  first on PYTHONPATH) pushing over bzr+http:// to the same server;
* the stock client pushing to `brz serve` over bzr:// (the reference: the
  patch does not touch that path).

The bzr+http:// server is our own app behind the test stand-in for Apache
(tests/smart_harness.py, basic auth as alice), in this process, on 127.0.0.1;
`brz serve` runs on 127.0.0.1 too. The history is the "big" synthetic one of
bench/bzr_bench.py (mostly incompressible blobs), smaller by default, made
deterministically and cached under --work. Runs are interleaved (the order
rotates every round), each push goes to a new branch that is removed after,
and the client's peak RSS (VmHWM) is noted. Prints a Markdown table.

    .venv/bin/python bench/breezy_patch_effect.py --repeats 3
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # trac_breezy, for the server
from bzr_bench import client_env  # the same client set-up as the main bench
from histories import make_history  # shared with the tests (tests/histories.py)
from servers import brz_serve
from smart_harness import USERS, Server

from trac_breezy.setenv import READ_WRITE

ROOT = Path(__file__).resolve().parent.parent
PATCH = ROOT / "patches" / "breezy-3.3.23-http-smart-request-body.patch"
STOCK_LINE = "self._buffer += bytes"  # what the patch removes from transport/http/urllib.py
MESSAGE_MARKER = b"bzr message 3 (bzr 1.6)\n"


# -- the patched copy ----------------------------------------------------------------


def patched_copy(dest: Path) -> Path:
    """Copy the installed breezy package under `dest` and apply the patch there."""
    import breezy

    shutil.copytree(Path(breezy.__file__).parent, dest / "breezy", symlinks=True)
    with PATCH.open("rb") as patch:
        subprocess.run(
            ["patch", "-p1", "--forward", "--batch", "-d", str(dest)],
            stdin=patch,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return dest


def client_module(env: dict[str, str]) -> tuple[str, bool]:
    """Where this environment's brz loads breezy from, and whether the fix is in it."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import breezy, breezy.transport.http.urllib as u; print(breezy.__file__); "
            f"print(open(u.__file__).read().count({STOCK_LINE!r}))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    return out[0], out[1] == "0"


# -- measuring ---------------------------------------------------------------------


def peak_rss_kib(pid: int) -> int:
    """The high-water mark of a live process's RSS (VmHWM), 0 once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def brz(env: dict[str, str], *args: str, timeout: float) -> tuple[float, float]:
    """Run `python -m breezy ARGS`: (wall seconds, the client's peak RSS in MiB).

    The peak is VmHWM read every 50 ms while the client runs (wait4's ru_maxrss
    would also count this process's own RSS, inherited at fork).
    """
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "breezy", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        peak = 0
        try:
            while True:  # bounded by `timeout`
                peak = max(peak, peak_rss_kib(proc.pid))
                try:
                    proc.wait(timeout=0.05)
                    break
                except subprocess.TimeoutExpired:
                    if time.perf_counter() - started > timeout:
                        raise
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"brz {' '.join(args)} failed:\n{stderr.read().decode()[-2000:]}")
    return elapsed, peak / 1024


def count_parts(body: bytes) -> int:
    """How many body parts (b"b" chunks) a protocol-3 request carries."""
    if not body.startswith(MESSAGE_MARKER):
        return 0
    pos = len(MESSAGE_MARKER)
    pos += 4 + int.from_bytes(body[pos : pos + 4], "big")  # the headers
    parts = 0
    while pos < len(body) and body[pos : pos + 1] != b"e":
        kind = body[pos : pos + 1]
        pos += 1
        if kind == b"o":
            pos += 1
            continue
        pos += 4 + int.from_bytes(body[pos : pos + 4], "big")
        parts += kind == b"b"
    return parts


def sizing(app, biggest: dict[str, int]):
    """`app`, noting the largest request body seen and how many parts it had."""

    def wrapped(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > biggest["bytes"]:
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            biggest.update(bytes=length, parts=count_parts(body))
        return app(environ, start_response)

    return wrapped


def env_for(base: dict[str, str], pythonpath: Path | None) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def summary(times: list[float]) -> str:
    return f"{statistics.median(times):.1f} ({min(times):.1f}-{max(times):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/var/tmp/trac-breezy-patch-bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--revisions", type=int, default=16)
    parser.add_argument("--blobs-per-revision", type=int, default=100)
    parser.add_argument("--blob-kb", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=1800, help="per brz run, seconds")
    args = parser.parse_args()
    if not 1 <= args.repeats <= 20:
        parser.error("--repeats must be between 1 and 20")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    source = make_history(
        work / f"history-{args.revisions}x{args.blobs_per_revision}x{args.blob_kb}k",
        args.revisions,
        50,
        seed=2,
        blobs_per_rev=args.blobs_per_revision,
        blob_kb=args.blob_kb,
    )
    tiny = make_history(work / "history-tiny", 3, 10, seed=1)
    print(f"histories ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
    packs = source / ".bzr" / "repository" / "packs"
    repo_mib = sum(f.stat().st_size for f in packs.iterdir()) / 2**20

    run_dir = Path(tempfile.mkdtemp(prefix="breezy-patch-", dir=work))
    http_root, serve_root, home = run_dir / "http", run_dir / "serve", run_dir / "home"
    for d in (http_root, serve_root, home):
        d.mkdir()
    server = Server(http_root, READ_WRITE)
    biggest = {"bytes": 0, "parts": 0}
    server.httpd.set_app(sizing(server.httpd.get_app(), biggest))
    try:
        user, password = next(iter(USERS.items()))
        base = client_env(home, server.httpd.server_port, user, password)
        stock_env = env_for(base, None)
        patched_env = env_for(base, patched_copy(run_dir / "patched"))
        for env, want_fixed in ((stock_env, False), (patched_env, True)):
            where, fixed = client_module(env)
            print(f"client breezy: {where} (fixed: {fixed})", file=sys.stderr)
            if fixed != want_fixed:
                raise RuntimeError(f"{where}: expected fixed={want_fixed}")

        with brz_serve(serve_root, stock_env) as served:
            # (label, env, base URL, directory the server keeps branches in)
            configs = [
                ("bzr+http://, stock client", stock_env, server.url(""), http_root),
                ("bzr+http://, patched client", patched_env, server.url(""), http_root),
                ("bzr:// (brz serve), stock client", stock_env, served.url + "/", serve_root),
            ]
            for n, (_, env, url, _) in enumerate(configs):  # warm-up, not measured
                brz(env, "push", "-q", "-d", str(tiny), f"{url}warmup-{n}", timeout=300)
            times = {label: [] for label, *_ in configs}
            rss = {label: [] for label, *_ in configs}
            for i in range(args.repeats):
                order = configs[i % len(configs) :] + configs[: i % len(configs)]
                for n, (label, env, url, root) in enumerate(order):
                    name = f"push-{i}-{n}"
                    elapsed, peak = brz(
                        env, "push", "-q", "-d", str(source), url + name, timeout=args.timeout
                    )
                    times[label].append(elapsed)
                    rss[label].append(peak)
                    print(f"round {i + 1}: {label}: {elapsed:.1f} s", file=sys.stderr)
                    shutil.rmtree(root / name)
    finally:
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)

    medians = {label: statistics.median(t) for label, t in times.items()}
    stock, served_median = medians[configs[0][0]], medians[configs[2][0]]
    print(
        f"\n`brz push` of a {args.revisions}-revision history ({repo_mib:.0f} MiB of packs, "
        f"{args.blobs_per_revision} x {args.blob_kb} KiB incompressible blobs per revision); "
        f"largest bzr+http request body {biggest['bytes'] / 2**20:.0f} MiB in "
        f"{biggest['parts']} parts; {args.repeats} interleaved runs each.\n"
    )
    print(
        "| client → server | push (s), median (min-max) | vs stock bzr+http | vs bzr:// "
        "| client peak RSS (MiB), max |"
    )
    print("|---|---|---|---|---|")
    for label, *_ in configs:
        print(
            f"| {label} | {summary(times[label])} | {medians[label] / stock:.2f}x | "
            f"{medians[label] / served_median:.2f}x | {max(rss[label]):.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
