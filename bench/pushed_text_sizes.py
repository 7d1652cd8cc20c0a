"""Measure: how large are the texts of honest pushed blocks, against the bytes sent?

Why: the smart server refuses a pushed text larger than EXPANSION times the
bytes its block was sent as (or FREE_TEXT_BYTES), reading the sizes before
building anything (trac_breezy/smart_server/text_sizes.py). This measures the
ratio on histories made by Breezy itself, block by block as a client sends
them (`_wire_bytes`, with the client's own rebuilding of poorly used blocks),
so that the bound is far from what real pushes do.

    .venv/bin/python bench/pushed_text_sizes.py --work /tmp/text-sizes

Prints a Markdown table: per history, the bytes a push of everything sends,
the largest text, the largest ratio of a text to its block's bytes on the
wire (and that block's size), and how long the server's checks of every
block took (`check_header` and `check_sizes`, decompression included; not
Breezy's own parsing of the block, which a stock server does too).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # trac_breezy
from histories import make_history

from trac_breezy.smart_server.text_sizes import (
    allowed_size,
    check_header,
    check_sizes,
    text_size,
)

MB = 1024 * 1024


def brz(*args: str, cwd: Path | None = None) -> None:
    env = {**os.environ, "BRZ_EMAIL": "Bench <bench@example.org>"}
    subprocess.run([sys.executable, "-m", "breezy", *args], cwd=cwd, env=env, check=True)


def growing_log(path: Path, revisions: int) -> Path:
    """One file appended to at every commit (a NEWS or ChangeLog), then packed."""
    if not (path / ".bzr").exists():
        brz("init", str(path))
        rng = random.Random(3)
        with (path / "NEWS").open("w") as log:
            log.write("start\n")
        brz("add", cwd=path)
        for rev in range(revisions):
            with (path / "NEWS").open("a") as log:
                log.write(" ".join(f"w{rng.randrange(3000)}" for _ in range(400)) + "\n")
            brz("commit", "-q", "-m", f"r{rev}", cwd=path)
        brz("pack", str(path))
    return path


def big_file(path: Path, kind: str) -> Path:
    """A 100 MB file (zeros, words or random bytes), changed once, then packed."""
    if not (path / ".bzr").exists():
        brz("init", str(path))
        rng = random.Random(5)
        with (path / "big").open("wb") as big:
            if kind == "zeros":
                big.truncate(100 * MB)
            elif kind == "words":
                words = [f"w{i} ".encode() for i in range(5000)]
                for _ in range(100):
                    big.write(b"".join(rng.choices(words, k=MB // 6))[:MB])
            else:
                big.write(os.urandom(100 * MB))
        brz("add", "big", cwd=path)  # named: `add` alone skips files over 20 MB
        brz("commit", "-q", "-m", "big", cwd=path)
        with (path / "big").open("ab") as big:
            big.write(b"changed")
        brz("commit", "-q", "-m", "changed", cwd=path)
        brz("pack", str(path))
    return path


def measure(path: Path) -> tuple[int, float, int, float, int]:
    """(largest text, largest text/sent ratio, the bytes sent of that block,
    seconds the server's checks took over every block, bytes sent)."""
    from breezy.bzr import groupcompress
    from breezy.repository import Repository

    repo = Repository.open(str(path))
    largest, ratio, ratio_sent, checking, total = 0, 0.0, 0, 0.0, 0
    with repo.lock_read():
        for store in (repo.texts, repo.inventories, repo.chk_bytes, repo.revisions):
            keys = list(store.keys())
            for record in store.get_record_stream(keys, "groupcompress", False):
                if record.storage_kind != "groupcompress-block":
                    continue
                wire = record._manager._wire_bytes()
                total += len(wire)
                started = time.perf_counter()
                check_header(wire, allowed_size(len(wire)))
                checking += time.perf_counter() - started
                checked = groupcompress._LazyGroupContentManager.from_bytes(wire)  # as stock
                started = time.perf_counter()
                check_sizes(checked, allowed_size(len(wire)), len(wire))
                checking += time.perf_counter() - started
                del checked
                manager = groupcompress._LazyGroupContentManager.from_bytes(wire)
                content = manager._block._content or b""
                if manager._block._content is None:
                    manager._block._ensure_content()
                    content = manager._block._content
                for factory in manager._factories:
                    size = text_size(content, factory._start, factory._end)
                    largest = max(largest, size)
                    if size / len(wire) > ratio:
                        ratio, ratio_sent = size / len(wire), len(wire)
    return largest, ratio, ratio_sent, checking, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    import breezy

    breezy.initialize()
    histories = {
        "1,000 revisions x 200 files (bench), as committed": lambda p: make_history(
            p, revisions=1000, files=200, seed=1
        ),
        "1,000 revisions x 200 files, packed": lambda p: (
            make_history(p, revisions=1000, files=200, seed=1),
            brz("pack", str(p)),
        )[0],
        "one growing NEWS file, 300 commits, packed": lambda p: growing_log(p, 300),
        "100 MB of zeros, changed once, packed": lambda p: big_file(p, "zeros"),
        "100 MB of words, changed once, packed": lambda p: big_file(p, "words"),
        "100 MB random, changed once, packed": lambda p: big_file(p, "random"),
    }
    print(
        "| history | bytes sent | largest text | largest text / bytes sent "
        "| that block's bytes | the server's checks (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for n, (name, make) in enumerate(histories.items()):
        path = make(args.work / f"h{n}")
        largest, ratio, sent, checking, total = measure(path)
        print(
            f"| {name} | {total:,} | {largest:,} | {ratio:,.1f} | {sent:,} | {checking:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
