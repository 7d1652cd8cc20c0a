"""Benchmark: a 1,000-revision push, before and after the password change (issue 19, 8).

Why: Apache's file provider ran the users' bcrypt on every request of a push,
which is why the cost was 5. The image now checks passwords in its own
provider (trac_breezy/passwords.py), which remembers a good one for a minute,
and makes new passwords at cost 10. This measures, side by side in one run,
the push of the same history with the stock client against:

* `before`: an image from before the change (Apache's mod_authn_file), its
  user at cost 5, as it was;
* `before, cost 10`: the same container, a user at cost 10: what raising the
  cost alone would have cost;
* `after`: the image of this tree, its user at cost 10 (the new default).

Rounds interleave the cells (the order rotates each round); each push goes
to a new branch, removed afterwards. Prints a Markdown table for
docs/benchmarks.md (median and min-max seconds, and the number of requests
Apache authenticated per push, from its access log). The two images must
exist (`docker tag` the old build before rebuilding):

    .venv/bin/python bench/password_push_bench.py --before trac-breezy:before \\
        --after trac-breezy:test --rounds 7
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bzr_bench import brz, client_env, make_history

PASSWORD = "bench password"
USERS_FILE = "/var/lib/trac-breezy/htpasswd"
DASH = "\N{EN DASH}"


@dataclass
class Cell:
    label: str
    container: str
    port: int
    user: str
    env: dict[str, str]


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=300
    ).stdout


@contextmanager
def container(image: str, name: str) -> Iterator[int]:
    """The image with its defaults and user `admin` (ADMIN_USER); yields its port."""
    docker(
        "run", "-d", "--name", name, "-p", "127.0.0.1::8080",
        "-e", "ADMIN_USER=admin", "-e", f"ADMIN_PASSWORD={PASSWORD}", image,
    )  # fmt: skip
    try:
        port = int(docker("port", name, "8080").split(":")[-1])
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/trac/", timeout=5).close()
                break
            except OSError:
                time.sleep(1)
        else:
            raise SystemExit(f"{name} did not answer: {docker('logs', name)[-3000:]}")
        yield port
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)


def cost_of(name: str, user: str) -> str:
    for line in docker("exec", name, "cat", USERS_FILE).splitlines():
        if line.startswith(f"{user}:"):
            return line.split("$")[2] if line.count("$") >= 3 else line.split(":")[1][:6]
    return "?"


def authenticated_requests(name: str, user: str) -> int:
    """Requests the access log attributes to `user` (Apache's %u)."""
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
    return sum(1 for line in logs.stdout.splitlines() if f" {user} [" in line)


def push(cell: Cell, history: Path, name: str) -> float:
    url = f"bzr+http://127.0.0.1:{cell.port}/bzr/{name}"
    seconds = brz(cell.env, "push", "-q", "-d", str(history), url)
    docker("exec", cell.container, "rm", "-rf", f"/srv/bzr/{name}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="image from before the change")
    parser.add_argument("--after", required=True, help="image of this tree")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--revisions", type=int, default=1000)
    parser.add_argument("--work", default="/var/tmp/trac-breezy-bench")
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    history = make_history(Path(args.work) / f"history-{args.revisions}", args.revisions, 300, 1)
    homes = Path(tempfile.mkdtemp(prefix="password-bench-"))
    with ExitStack() as stack:
        before_port = stack.enter_context(container(args.before, "tb-password-bench-before"))
        after_port = stack.enter_context(container(args.after, "tb-password-bench-after"))
        docker(
            "exec", "-u", "www-data", "tb-password-bench-before", "htpasswd", "-b", "-B",
            "-C", "10", USERS_FILE, "admin10", PASSWORD,
        )  # fmt: skip
        cells = [
            Cell("before", "tb-password-bench-before", before_port, "admin", {}),
            Cell("before, cost 10", "tb-password-bench-before", before_port, "admin10", {}),
            Cell("after", "tb-password-bench-after", after_port, "admin", {}),
        ]
        for number, cell in enumerate(cells):
            cell.env = client_env(homes / str(number), cell.port, cell.user, PASSWORD)
            push(cell, history, f"warm-up-{number}")  # untimed
        times: dict[str, list[float]] = {cell.label: [] for cell in cells}
        requests: dict[str, list[int]] = {cell.label: [] for cell in cells}
        for round_no in range(args.rounds):
            shift = round_no % len(cells)
            for cell in cells[shift:] + cells[:shift]:
                seen = authenticated_requests(cell.container, cell.user)
                times[cell.label].append(push(cell, history, f"push-{round_no}"))
                requests[cell.label].append(
                    authenticated_requests(cell.container, cell.user) - seen
                )
        print(f"{args.revisions}-revision push (new branch), stock client, {args.rounds} rounds\n")
        print("| server | users' hash | requests with a password per push | push (s) |")
        print("|---|---|---|---|")
        for cell in cells:
            values = times[cell.label]
            print(
                f"| {cell.label} | bcrypt cost {cost_of(cell.container, cell.user)} | "
                f"{statistics.median(requests[cell.label]):.0f} | "
                f"{statistics.median(values):.2f} ({min(values):.2f}{DASH}{max(values):.2f}) |"
            )
    shutil.rmtree(homes, ignore_errors=True)


if __name__ == "__main__":
    main()
