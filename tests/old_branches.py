"""A Bazaar tree of old formats, made the honest way: `brz init --format=F`.

Breezy 3.3 still creates every format bzr ever wrote, the pre-0.8 ones
(`weave`, `metaweave`) with its built-in `weave_fmt` plugin, which the brz
command loads (`brz init --format=weave` writes "Bazaar-NG branch, format 6",
the all-in-one layout of bzr 0.x). Each standalone branch gets two commits;
each format that has shared repositories gets one with a `trunk` branch of
one commit (a weave directory cannot hold a shared repository: bzr 0.x had
none).
"""

from __future__ import annotations

from pathlib import Path

from stack import Brz

# The formats of issue 20's list, oldest first (`brz help formats` names them).
FORMATS = (
    "weave",
    "metaweave",
    "knit",
    "dirstate-tags",
    "pack-0.92",
    "rich-root-pack",
    "1.6",
    "1.9",
    "1.14",
    "1.14-rich-root",
    "2a",
)
# All in one `.bzr`: no shared repository, and no smart server can lock it.
ALL_IN_ONE = ("weave",)
SHARED = tuple(f for f in FORMATS if f not in ALL_IN_ONE)


def commit(brz: Brz, tree: Path, name: str, message: str) -> None:
    (tree / name).write_text(f"{message}\n")
    brz("add", "-q", cwd=tree)
    brz("commit", "-q", "-m", message, cwd=tree)


def make_old_tree(root: Path, brz: Brz, formats: tuple[str, ...] = FORMATS) -> None:
    """`root/branches/F` (two commits) and `root/repos/F/trunk` (one) for each format F."""
    for fmt in formats:
        branch = root / "branches" / fmt
        branch.parent.mkdir(parents=True, exist_ok=True)
        brz("init", "-q", f"--format={fmt}", str(branch))
        commit(brz, branch, "README", f"first commit of {fmt}")
        commit(brz, branch, "NEWS", f"second commit of {fmt}")
        if fmt in SHARED:
            repo = root / "repos" / fmt
            repo.parent.mkdir(parents=True, exist_ok=True)
            brz("init-shared-repo", "-q", f"--format={fmt}", str(repo))
            brz("init", "-q", str(repo / "trunk"))
            commit(brz, repo / "trunk", "README", f"trunk of {fmt}")
