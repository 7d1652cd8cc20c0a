"""The mounted Bazaar tree by format, for the dry run (`trac-breezy-migrate --check`).

A host moving in brings branches from every year of bzr (issue 20). This
walks BZR_ROOT as the Trac backend's `storage.find_branches` does (symlinks
never followed, at most `MAX_DEPTH` folders down, no walk into a branch's
working tree; shared repositories are entered for their branches) and reads
each control directory's format files (`.bzr/branch-format`,
`.bzr/branch/format`, `.bzr/repository/format`) as plain files, never
through a link: no branch is opened and no lock taken. Whether a format is
read, and its names, come from Breezy's own registries, with the pre-0.8
formats registered as the smart server registers them (`weave_fmt`).

One `Finding` per format (subject "tree"), with its count and a few example
paths:

* `Action.OK` for every format Breezy reads: all are served as they are,
  nothing is changed at start. Formats older than 2a carry the command that
  converts them (`brz upgrade --format=2a PATH`); `weave` (bzr 0.x, all in
  one `.bzr`) is served read-only, since no smart server can lock it.
* `Action.REFUSE` for control directories no format of Breezy 3.3 reads
  (named by their format string), or that Breezy opens only to upgrade
  (bzr 0.0.4's all-in-one format).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from trac_breezy import open_regular
from trac_breezy.admin.findings import Action, Finding
from trac_breezy.bzr_formats import register_all

SUBJECT = "tree"
MAX_DEPTH = 8  # as the Trac backend's scan (trac_app/bzr/storage.py)
EXAMPLES = 3  # paths shown per format
FORMAT_FILE_BYTES = 1024  # a format file is one line; a bigger one is not a format file
UPGRADE = "brz upgrade --format=2a"
METADIR = b"Bazaar-NG meta directory, format 1\n"


@dataclass
class Group:
    """The control directories of one format."""

    branches: list[str] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)

    def count(self) -> str:
        parts = [
            _plural(len(self.branches), "branch", "branches"),
            _plural(len(self.repositories), "shared repository", "shared repositories"),
        ]
        return ", ".join(p for p in parts if p)

    def examples(self) -> str:
        paths = self.repositories + self.branches
        more = ", ..." if len(paths) > EXAMPLES else ""
        return ", ".join(paths[:EXAMPLES]) + more


def _plural(n: int, one: str, many: str) -> str:
    return "" if n == 0 else f"1 {one}" if n == 1 else f"{n} {many}"


def read_format(path: Path) -> bytes | None:
    """The format file at `path` (a regular file, never through a link), or None."""
    try:
        fd = open_regular(path)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        text = handle.read(FORMAT_FILE_BYTES + 1)
    return None if len(text) > FORMAT_FILE_BYTES else text


def format_names() -> dict[bytes, str]:
    """Repository format string -> the `brz init --format` names that make it."""
    from breezy import controldir

    register_all()  # bzr 0.x's formats too, as the servers read them

    registry = controldir.format_registry
    names: dict[bytes, list[str]] = defaultdict(list)
    for key in registry.keys():  # noqa: SIM118 - a Breezy registry, not a dict
        if key in ("bzr", "default", "default-rich-root") or registry.get_info(key).experimental:
            continue  # aliases of 2a, and formats of Breezy's developers
        try:
            string = registry.make_controldir(key).repository_format.get_format_string()
        except NotImplementedError:  # all in one (weave): named by its control format
            continue
        names[string].append(key)
    return {string: "/".join(keys) for string, keys in names.items()}


def control_dirs(root: Path) -> list[Path]:
    """Every `.bzr` under `root`, within the bounds of the module docstring."""
    found = []
    base = len(root.parts)
    for directory, subdirs, _files in os.walk(root):
        here = Path(directory)
        if ".bzr" in subdirs:
            subdirs.remove(".bzr")
            control = here / ".bzr"
            found.append(control)
            if (control / "branch").is_dir() or (control / "revision-history").is_file():
                subdirs.clear()  # a branch; below it is its working tree
        if len(here.parts) - base >= MAX_DEPTH:
            subdirs.clear()
        subdirs.sort()
    return found


@dataclass
class Survey:
    """What the walk found, grouped by format name."""

    readable: dict[str, Group] = field(default_factory=lambda: defaultdict(Group))
    unreadable: dict[str, Group] = field(default_factory=lambda: defaultdict(Group))
    repository_of: dict[Path, str] = field(default_factory=dict)  # shared repo -> format

    def enclosing_format(self, place: Path) -> str | None:
        for parent in place.parents:
            if parent in self.repository_of:
                return self.repository_of[parent]
        return None


def _all_in_one(control_string: bytes) -> tuple[str, bool]:
    """(name, readable) of an all-in-one control format (bzr 0.x)."""
    from breezy.bzr import BzrProber

    try:
        control_format = BzrProber.formats.get(control_string)
    except KeyError:
        return _unknown(control_string), False
    name = "weave" if control_string.startswith(b"Bazaar-NG branch, format 6") else ""
    label = name or control_format.get_format_description()
    return label, bool(control_format.is_supported())


def _unknown(string: bytes) -> str:
    return repr(string.decode("utf-8", "replace").strip())


def survey(root: Path) -> Survey:
    """Sort every control directory under `root` into readable and unreadable formats."""
    from breezy import branch as _branch
    from breezy import repository as _repository

    names = format_names()
    result = Survey()
    for control in control_dirs(root):
        place = control.parent
        control_string = read_format(control / "branch-format") or b""
        if control_string and control_string != METADIR:
            name, readable = _all_in_one(control_string)
            (result.readable if readable else result.unreadable)[name].branches.append(str(place))
            continue
        if not control_string:
            result.unreadable["no format file"].branches.append(str(place))
            continue
        repository = read_format(control / "repository" / "format")
        branch = read_format(control / "branch" / "format")
        if repository is not None:
            try:
                _repository.format_registry.get(repository)
                name = names.get(repository) or _unknown(repository)
            except KeyError:
                result.unreadable[_unknown(repository)].repositories.append(str(place))
                continue
            if branch is None:
                result.repository_of[place] = name
                result.readable[name].repositories.append(str(place))
                continue
        else:
            name = result.enclosing_format(place) or "a repository outside the tree"
        if branch is None:
            continue  # a checkout's or tree's control directory only
        try:
            _branch.format_registry.get(branch)
        except KeyError:
            result.unreadable[_unknown(branch)].branches.append(str(place))
            continue
        result.readable[name].branches.append(str(place))
    return result


def inspect(root: Path) -> list[Finding]:
    """One finding per format under `root` (see the module docstring)."""
    found = survey(root)
    findings = []
    for name, group in sorted(found.readable.items()):
        findings.append(Finding(SUBJECT, Action.OK, _served(name, group)))
    for name, group in sorted(found.unreadable.items()):
        findings.append(
            Finding(
                SUBJECT,
                Action.REFUSE,
                f"format {name}: {group.count()} ({group.examples()}) that Breezy 3.3 cannot "
                "serve; convert them with the bzr that wrote them (`bzr upgrade`), or "
                f"`{UPGRADE}` where Breezy can upgrade them",
            )
        )
    return findings


def _served(name: str, group: Group) -> str:
    where = f"{group.count()} ({group.examples()})"
    if name == "2a":
        return f"format 2a: {where}, served as they are"
    if name == "weave":
        return (
            f"format weave (bzr 0.x, all in one .bzr): {where}, served read-only (branch, "
            f"checkout, log; commits and pushes refused); to write, `{UPGRADE} PATH` each"
        )
    return (
        f"format {name}: {where}, read and written as they are; "
        f"`{UPGRADE} PATH` makes each 2a (smaller, faster)"
    )
