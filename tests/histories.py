"""Synthetic Bazaar histories, deterministic (a fixed seed), made in-process.

Shared by the load test and the benchmarks (bench/ imports it from here), so
that what is measured and what is tested is the same history.
"""

from __future__ import annotations

import random
from pathlib import Path


def make_history(
    path: Path, revisions: int, files: int, seed: int, blobs_per_rev: int = 0, blob_kb: int = 0
) -> Path:
    """A branch of `revisions` commits over `files` text files, made in-process.

    With `blobs_per_rev`, each revision after the first also adds that many
    incompressible files of `blob_kb` KiB (the "big" history).
    """
    if (path / ".bzr").exists():
        return path
    import breezy
    import breezy.bzr
    from breezy import controldir
    from breezy.commit import NullCommitReporter

    if breezy.get_global_state() is None:
        breezy.initialize()
    quiet = NullCommitReporter()
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(2000)]
    tree = controldir.ControlDir.create_standalone_workingtree(
        str(path), format=controldir.format_registry.make_controldir("2a")
    )
    names = [f"dir{i % 20}/file{i}.txt" for i in range(files)]
    for d in {n.split("/")[0] for n in names}:
        (path / d).mkdir()
    for n in names:
        (path / n).write_text("\n".join(rng.choices(words, k=40)) + "\n")
    tree.smart_add([str(path)])
    tree.commit(
        "initial import",
        committer="Bench <bench@example.org>",
        timestamp=1.7e9,
        timezone=0,
        reporter=quiet,
    )
    for rev in range(1, revisions):
        for n in rng.sample(names, 5):
            with open(path / n, "a") as f:
                f.write(" ".join(rng.choices(words, k=12)) + "\n")
        for b in range(blobs_per_rev):
            blob = path / f"blobs/r{rev}/blob{b}.bin"
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(rng.randbytes(blob_kb * 1024))
        if blobs_per_rev:
            tree.smart_add([str(path / "blobs")])
        tree.commit(
            f"change {rev}",
            committer="Bench <bench@example.org>",
            timestamp=1.7e9 + rev * 60,
            timezone=0,
            reporter=quiet,
        )
    return path
