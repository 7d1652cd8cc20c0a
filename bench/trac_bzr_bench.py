"""Benchmark: Trac pages of a 1,000-revision Bazaar branch, and pushes that update Trac.

Against a running container (e.g. `scripts/up -d` with ADMIN_USER and
ADMIN_PASSWORD set), in one run:

* pushes the synthetic 1,000-revision history of bench/bzr_bench.py (made here
  if missing) and makes a Trac project whose repository is that branch;
* times four pages: the browser root, a file at an old revision, the revision
  log and a changeset page, each cold (first request after Apache restarted its
  daemon processes) and warm (median of 10 requests after that);
* times a push of 100 new revisions to a branch that a Trac project shows
  (announced to Trac) against the same push to a branch no project shows.

Prints Markdown tables for docs/benchmarks.md.

    python bench/trac_bzr_bench.py --url http://127.0.0.1:8080 --container NAME \\
        --user admin --password-file pw.txt
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bzr_bench import brz, client_env, make_history

PAGES = {
    "browser root": "/browser",
    "file at an old revision": "/browser/dir0/file0.txt?rev=10",
    "revision log": "/log/",
    "changeset": "/changeset/500",
}


def fetch(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        assert response.status == 200, url
    return time.perf_counter() - started


def in_container(container: str, *args: str) -> str:
    return subprocess.run(
        ["docker", "exec", "-u", "www-data", container, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def restart_daemons(container: str, url: str) -> None:
    """Graceful Apache restart: new mod_wsgi daemon processes, cold caches."""
    subprocess.run(
        [
            "docker",
            "exec",
            container,
            "supervisorctl",
            "-c",
            "/usr/share/trac-breezy/supervisord.conf",
            "signal",
            "USR1",
            "apache",
        ],
        check=True,
        capture_output=True,
    )
    time.sleep(3)
    fetch(url + "/trac/")  # Apache answers again (Trac's index, not our project)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--container", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--work", default="/var/tmp/trac-breezy-bench")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    port = int(args.url.rsplit(":", 1)[1].split("/")[0])
    env = client_env(work / "home", port, args.user, Path(args.password_file).read_text().strip())
    history = make_history(work / "history-1000", 1000, 300, seed=1)
    run_id = str(int(time.time()))
    name = f"tb{run_id}"
    base = f"bzr+{args.url}/bzr/{name}"

    brz(env, "push", "-q", "--create-prefix", "-d", str(history), f"{base}/trunk")
    envdir = f"/var/lib/trac/{name}"
    in_container(args.container, "trac-admin", envdir, "initenv", name, "sqlite:db/trac.db")
    for component in ("trac_breezy.*", "tracopt.ticket.commit_updater.*"):
        in_container(
            args.container,
            "trac-admin",
            envdir,
            "config",
            "set",
            "components",
            component,
            "enabled",
        )
    in_container(
        args.container,
        "trac-admin",
        envdir,
        "repository",
        "add",
        "(default)",
        f"/srv/bzr/{name}/trunk",
        "bzr",
    )
    project = f"{args.url}/trac/{name}"

    restart_daemons(args.container, args.url)
    rows = []
    for label, path in PAGES.items():
        cold = fetch(project + path)
        warm = statistics.median(fetch(project + path) for _ in range(10))
        rows.append((label, path, cold, warm))

    # 100 more revisions, pushed to the branch Trac shows and to one it does not.
    more = work / f"more-{run_id}"
    brz(env, "branch", "-q", str(history), str(more))
    for i in range(100):
        (more / "dir0" / "file0.txt").write_text(f"change {i}\n")
        brz(env, "commit", "-q", "-m", f"more {i}, refs #1", cwd=more)
    brz(env, "push", "-q", "-d", str(history), f"{base}/untracked")
    pushes = {
        "to a branch no Trac project shows": brz(
            env, "push", "-q", "-d", str(more), f"{base}/untracked"
        ),
        "to the branch the Trac project shows": brz(
            env, "push", "-q", "-d", str(more), f"{base}/trunk"
        ),
    }
    shutil.rmtree(more, ignore_errors=True)
    in_container(args.container, "rm", "-rf", envdir, f"/srv/bzr/{name}")

    print("| page | path | cold (ms) | warm, median of 10 (ms) |")
    print("|---|---|---|---|")
    for label, path, cold, warm in rows:
        print(f"| {label} | `{path}` | {cold * 1000:.0f} | {warm * 1000:.0f} |")
    print("\n| push of 100 revisions | time (s) |")
    print("|---|---|")
    for label, seconds in pushes.items():
        print(f"| {label} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
