"""The ten-minute mixed load: memory, descriptors and Trac latency over time.

The variant of tests/test_e2e_load.py that is too long for the test command:
6 anonymous pullers of a 1,000-revision branch, 2 pushers and 4 Trac readers
of that branch's pages, at once, for `--minutes`, against a stack of the
built image started here (and removed afterwards). Prints a Markdown report
for docs/reliability.md: errors, Trac p50/p99, pulls and pushes done, and the
daemons' summed RSS and open descriptors every `--sample` seconds, warm and
after the load. Traffic goes only to the stack's loopback port.

    scripts/prepare-build && docker-compose build
    python bench/mixed_load.py --image trac-breezy:latest --minutes 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import load  # shared with the tests (tests/load.py)
from servers import free_port
from stack import ADMIN, Stack


def start(image: str) -> Stack:
    stack = Stack(
        project=f"tbbenchload{free_port()}",
        port=free_port(),
        image=image,
        env_overrides={"ADMIN_USER": ADMIN[0], "ADMIN_PASSWORD": ADMIN[1], **load.STACK_ENV},
    )
    stack.up()
    return stack


def report(warm: dict[str, int], outcome: load.Outcome, after: dict[str, int]) -> str:
    summary = load.summary(outcome)
    lines = [
        "| minute | daemons' RSS (MB) | open fds |",
        "|---|---|---|",
        f"| warm | {warm['rss_kib'] / 1024:.0f} | {warm['fds']} |",
    ]
    start = outcome.samples[0]["t"] if outcome.samples else 0
    lines += [
        f"| {(s['t'] - start) / 60:.1f} | {s['rss_kib'] / 1024:.0f} | {s['fds']} |"
        for s in outcome.samples
    ]
    lines.append(f"| after (quiet 10 s) | {after['rss_kib'] / 1024:.0f} | {after['fds']} |")
    lines += ["", "| measure | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in summary.items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="trac-breezy:latest")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--sample", type=float, default=30, help="seconds between samples")
    args = parser.parse_args()
    stack = start(args.image)
    try:
        with tempfile.TemporaryDirectory() as work:
            load.prepare(stack, Path(work) / "prepare")
            load.run(stack, Path(work) / "warm", 60, 2, 1, 2)
            time.sleep(10)
            warm = load.resources(stack)
            outcome = load.run(
                stack, Path(work) / "load", args.minutes * 60, sample_every=args.sample
            )
            time.sleep(10)
            after = load.resources(stack)
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)
    print(report(warm, outcome, after))
    for error in outcome.errors[:10]:
        print(f"error: {error}", file=sys.stderr)
    return 1 if outcome.errors else 0


if __name__ == "__main__":
    sys.exit(main())
