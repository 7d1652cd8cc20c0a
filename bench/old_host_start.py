"""What moving an old host in costs at start: the dry run, the first start
(repairs, hotcopies, Trac's upgrades), and every start after it.

The data is tests/old_host.py's (five projects from Trac 0.12 to 1.2 with the
defects old hosts left, a pack-0.92 branch, an apr1 users file), made anew
for each repeat. Against the same number of projects made by this image
(nothing to repair or upgrade), in the same run, interleaved. Times are from
`docker run`/`up` to the first healthy report (the healthcheck runs every
5 s, so start times are rounded up to it). Traffic stays on loopback.

    scripts/prepare-build && docker-compose build
    python bench/old_host_start.py --image trac-breezy:latest --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from old_host import WWW_DATA, chown_tree, old_host  # shared with the tests
from old_trac import TRAC_ADMIN
from servers import free_port
from stack import Stack, run


def current_host(base: Path) -> tuple[Path, Path]:
    """Five projects as this image leaves them: nothing to repair or upgrade."""
    trac_dir, bzr_dir = base / "trac", base / "bzr"
    bzr_dir.mkdir(parents=True)
    trac_dir.mkdir()
    for name in ("one", "two", "three", "four", "five"):
        subprocess.run(
            [TRAC_ADMIN, str(trac_dir / name), "initenv", name, "sqlite:db/trac.db"],
            check=True,
            capture_output=True,
        )
    chown_tree(trac_dir, WWW_DATA)
    chown_tree(bzr_dir, WWW_DATA)
    return trac_dir, bzr_dir


def dry_run(image: str, trac_dir: Path, bzr_dir: Path) -> float:
    started = time.monotonic()
    volumes = ["-v", f"{trac_dir}:/var/lib/trac", "-v", f"{bzr_dir}:/srv/bzr"]
    run(["docker", "run", "--rm", *volumes, image, "trac-breezy-migrate", "--check"], timeout=600)
    return time.monotonic() - started


def starts(image: str, trac_dir: Path, bzr_dir: Path) -> tuple[float, float]:
    """(first start, second start) to healthy, on the same data."""
    stack = Stack(
        project=f"tbbenchold{free_port()}",
        port=free_port(),
        image=image,
        env_overrides={"TRAC_DATA": str(trac_dir), "BZR_DATA": str(bzr_dir)},
    )
    try:
        first = stack.up(timeout=600)
        stack.compose("down")
        second = stack.up(timeout=600)
    finally:
        stack.compose("down", "-v", check=False)
    return first, second


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s ({min(values):.1f} to {max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="trac-breezy:latest")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {"old host": {}, "this image's": {}}
    for _ in range(args.repeats):
        for label in results:
            with tempfile.TemporaryDirectory() as base:
                if label == "old host":
                    trac_dir, bzr_dir = old_host(args.image, Path(base))
                else:
                    trac_dir, bzr_dir = current_host(Path(base))
                measured = results[label]
                measured.setdefault("dry run", []).append(dry_run(args.image, trac_dir, bzr_dir))
                first, second = starts(args.image, trac_dir, bzr_dir)
                measured.setdefault("first start", []).append(first)
                measured.setdefault("next start", []).append(second)
    print("| five projects | dry run | first start to healthy | next start to healthy |")
    print("|---|---|---|---|")
    for label, measured in results.items():
        cells = " | ".join(spread(measured[k]) for k in ("dry run", "first start", "next start"))
        print(f"| {label} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
