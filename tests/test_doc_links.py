"""The README and docs/ lead somewhere: every relative link names a file that exists,
and every anchor a heading of that file (GitHub's way of naming headings).

The README is short and points to one page per topic (issue 21): a page renamed or
a heading reworded would otherwise leave a dead link that nobody notices.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Written on another branch of issue 21 (the tests' part), linked from here before
# it is merged: accepted only while it does not exist. Remove once merged.
WRITTEN_ELSEWHERE = {ROOT / "docs" / "testing.md"}

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where links are links."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, no punctuation, `-` for spaces."""
    found: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"#{1,6} (.+)", line)
        if heading:
            text = heading.group(1).strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


def relative_links(page: Path) -> list[str]:
    targets = LINK.findall(prose(page.read_text()))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(page: Path):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            if file not in WRITTEN_ELSEWHERE:
                broken.append(f"{target}: no file {file.relative_to(ROOT)}")
            continue
        if anchor and file.suffix == ".md" and anchor not in heading_anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: fix these links: {broken}"


def test_the_readme_reaches_every_page_of_docs_in_one_click():
    """Every page of docs/ is linked from the README itself (the index too)."""
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(ROOT / "README.md")}
    unreached = [p.name for p in PAGES[1:] if p not in linked]
    assert not unreached, f"link these from README.md: {unreached}"


def test_docs_index_lists_every_page():
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in relative_links(index)}
    missing = [p.name for p in PAGES[1:] if p != index and p not in linked]
    assert not missing, f"add these to docs/README.md: {missing}"


def test_the_link_checker_sees_a_broken_link(tmp_path: Path):
    """The checker itself: a missing file and a missing heading are both found."""
    (tmp_path / "a.md").write_text("# Title `x`\n\n[ok](#title-x) [gone](b.md) [no](#none)\n")
    page = tmp_path / "a.md"
    targets = relative_links(page)
    assert targets == ["#title-x", "b.md", "#none"]
    assert "title-x" in heading_anchors(page)
    assert "none" not in heading_anchors(page)
    assert not (tmp_path / "b.md").exists()
