"""The dry run's look at the Bazaar tree (trac_breezy/admin/old_tree.py), on
trees made by the real `brz init --format=F` (tests/old_branches.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from old_branches import FORMATS, make_old_tree
from stack import Brz

from trac_breezy.admin.findings import Action
from trac_breezy.admin.old_tree import MAX_DEPTH, inspect


@pytest.fixture(scope="module")
def old_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    make_old_tree(root, Brz(tmp_path_factory.mktemp("home")))
    return root


def line_of(findings, name: str) -> str:
    (line,) = [f.line() for f in findings if f.text.startswith(f"format {name}")]
    return line


def test_every_format_gets_one_line_with_its_count_and_examples(old_tree: Path):
    findings = inspect(old_tree)
    assert {f.subject for f in findings} == {"tree"}
    assert {f.action for f in findings} == {Action.OK}
    text = "\n".join(f.line() for f in findings)
    for fmt in FORMATS:
        assert f"{old_tree}/branches/{fmt}" in text or fmt in text, text
    # knit, dirstate-tags (same repository format): two standalone branches,
    # two shared repositories and the trunk branch of each.
    knit = line_of(findings, "dirstate/dirstate-tags/knit")
    assert "4 branches, 2 shared repositories" in knit
    assert f"{old_tree}/repos/dirstate-tags" in knit and ", ..." in knit
    assert "`brz upgrade --format=2a PATH`" in knit
    two_a = line_of(findings, "2a")
    assert "2 branches, 1 shared repository" in two_a and "upgrade" not in two_a
    weave = line_of(findings, "weave")
    assert "1 branch (" in weave and f"{old_tree}/branches/weave" in weave
    assert "read-only" in weave and "`brz upgrade --format=2a PATH`" in weave
    assert "format pack-0.92: 2 branches, 1 shared repository" in text


def test_formats_breezy_cannot_read_are_refused_by_name(tmp_path: Path, old_tree: Path):
    brz = Brz(tmp_path / "home")
    future = tmp_path / "tree" / "future"
    future.parent.mkdir()
    brz("init", "-q", "--format=2a", str(future))
    (future / ".bzr" / "repository" / "format").write_bytes(b"Bazaar repository format 9z\n")
    (tmp_path / "tree" / "half-copied" / ".bzr").mkdir(parents=True)
    findings = inspect(tmp_path / "tree")
    refused = {f.text.split(":")[0]: f.text for f in findings if f.action is Action.REFUSE}
    assert set(refused) == {"format 'Bazaar repository format 9z'", "format no format file"}
    assert f"{future}" in refused["format 'Bazaar repository format 9z'"]
    assert "cannot serve" in refused["format no format file"]


def test_the_walk_follows_no_link_and_stops_at_its_depth(tmp_path: Path):
    brz = Brz(tmp_path / "home")
    outside = tmp_path / "outside"
    outside.mkdir()
    brz("init", "-q", "--format=knit", str(outside / "secret"))
    root = tmp_path / "tree"
    root.mkdir()
    (root / "link").symlink_to(outside)
    deep = root.joinpath(*[f"d{i}" for i in range(MAX_DEPTH + 1)], "too-deep")
    brz("init", "-q", "--create-prefix", str(deep))
    brz("init", "-q", str(root / "shallow"))
    # A format file made a link to another file is not read through it.
    linked = root / "linked"
    brz("init", "-q", "--format=knit", str(linked))
    control = linked / ".bzr" / "branch-format"
    control.unlink()
    control.symlink_to(root / "shallow" / ".bzr" / "branch-format")
    lines = [f.line() for f in inspect(root)]
    assert lines == [
        f"tree: ok: format 2a: 1 branch ({root}/shallow), served as they are",
        f"tree: refuse: format no format file: 1 branch ({root}/linked) that Breezy 3.3 "
        "cannot serve; convert them with the bzr that wrote them (`bzr upgrade`), or "
        "`brz upgrade --format=2a` where Breezy can upgrade them",
    ]
