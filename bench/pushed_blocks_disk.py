"""Benchmark: what storing pushed blocks as the client packed them costs on disk.

Why: our smart server keeps a pushed groupcompress block whole when it holds
more than one text and is at least 75 % used, where stock Breezy (`brz serve`)
also requires it to be "full" (3 MB) and compresses every other block again
(trac_breezy/smart_server/incoming_blocks.py). That is most of a push's
server time saved (docs/benchmarks.md); this measures what it costs. The same
histories are pushed with the same client to both servers, in one run, and
the bytes in each new branch's `.bzr/repository/packs` are compared:

* the bench's 1,000-revision history (one pack, as after an autopack or
  `brz pack`), and with --big the 400 MB one;
* "fresh-9x20": that history plus 9 commits of 20 changed files each, not yet
  autopacked (10 packs), pushed as a new branch;
* the same 9 commits pushed onto the 1,000 revisions (an incremental push);
* "fresh-8x150": plus 8 commits of 150 changed files each (9 packs), as a new
  branch: the costliest case we found.

Needs the running container (as bench/bzr_bench.py does); the histories are
cached under --work. Prints a Markdown table.

    .venv/bin/python bench/pushed_blocks_disk.py --url http://127.0.0.1:18090 \\
        --container "$(docker ps -qf name=web)" --user admin --password-file /tmp/pw
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bzr_bench import (  # the same servers and client set-up as the main bench
    Server,
    brz,
    client_env,
    container_server,
    reference_server,
)
from histories import make_history  # shared with the tests (tests/histories.py)

# (name, commits, files changed per commit) on top of the 1,000 revisions.
FRESH = (("fresh-9x20", 9, 20), ("fresh-8x150", 8, 150))


def fresh_commits(env: dict[str, str], base: Path, work: Path, commits: int, files: int) -> Path:
    """A branch of `base` plus `commits` new commits, each appending a line to
    `files` text files (cached; the seed is fixed)."""
    path = work / f"{base.name}-fresh-{commits}x{files}"
    if (path / ".bzr").exists():
        return path
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    brz(env, "branch", "-q", str(base), str(partial))
    names = sorted(p.relative_to(partial) for p in partial.rglob("*.txt"))
    rng = random.Random(commits * 1000 + files)
    for n in range(commits):
        for name in rng.sample(names, files):
            with open(partial / name, "a") as text:
                text.write(f"fresh commit {n}: " + " ".join(rng.choices("abcdefgh", k=30)) + "\n")
        brz(env, "commit", "-q", "-m", f"fresh {n}", cwd=partial)
    partial.rename(path)
    return path


def pushed_bytes(
    server: Server, env: dict[str, str], source: Path, name: str, onto: Path | None = None
) -> int:
    """The pack bytes of a new branch `name` on `server` after pushing `source`
    (first `onto`, then `source` on top of it, if given)."""
    for history in (onto, source):
        if history is not None:
            brz(env, "push", "-q", "-d", str(history), server.base + name)
    assert server.pack_bytes is not None
    return server.pack_bytes(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="our server (http://)")
    parser.add_argument("--container", required=True, help="the running container")
    parser.add_argument("--bzr-root", default="/srv/bzr", help="the container's BZR_ROOT")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--work", default="/var/tmp/trac-breezy-bench")
    parser.add_argument("--big", action="store_true", help="also the 400 MB history (~1 min)")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    url, password = args.url.rstrip("/"), Path(args.password_file).read_text().strip()
    port = int(url.rsplit(":", 1)[1])
    env = client_env(work / "home-disk", port, args.user, password)
    small = make_history(work / "history-1000", 1000, 300, seed=1)
    cases: list[tuple[str, Path, Path | None]] = [("1000-revisions", small, None)]
    if args.big:
        big = make_history(
            work / "history-big-100x100k", 30, 50, seed=2, blobs_per_rev=100, blob_kb=100
        )
        cases.append(("big", big, None))
    for name, commits, files in FRESH:
        fresh = fresh_commits(env, small, work, commits, files)
        cases.append((f"1000-revisions + {name}, new branch", fresh, None))
        if name == FRESH[0][0]:
            cases.append((f"{name} pushed onto the 1000-revisions", fresh, small))

    run_id = uuid.uuid4().hex[:8]
    rows = [
        "| pushed | brz serve (bytes) | trac-breezy (bytes) | difference |",
        "|---|---|---|---|",
    ]
    with ExitStack() as stack:
        ref = stack.enter_context(reference_server(work, run_id, env))
        ours = stack.enter_context(container_server(url, args.container, args.bzr_root, run_id))
        for n, (label, source, onto) in enumerate(cases):
            sizes = [pushed_bytes(s, env, source, f"disk-{n}", onto) for s in (ref, ours)]
            if onto is not None:  # only what the second push added
                sizes = [
                    size - pushed_bytes(s, env, onto, f"base-{n}")
                    for s, size in zip((ref, ours), sizes, strict=True)
                ]
            change = (sizes[1] - sizes[0]) / sizes[0] * 100
            rows.append(f"| {label} | {sizes[0]:,} | {sizes[1]:,} | {change:+.1f} % |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
