"""Who may read and write which path of the Bazaar tree: one rule file for brz and Trac.

Why this exists: teams that share a host need per-project and per-path
rights, and Trac already understands one format for them, Subversion's authz
file (`[groups]`, `[aliases]`, `[/path]` sections of `user = rw`, `@group =
r`, `* =`, `$anonymous`, `$authenticated`), which its `AuthzSourcePolicy`
applies to the source browser, logs, changesets, the timeline and search.
The smart server, the tree's plain files and its folder pages (none of
which may import Trac) need the same answers, so this module reads the same
file and decides the way `trac.versioncontrol.svn_authz` does:

* a section's paths are paths of the Bazaar tree from its top (`/alpha/trunk`
  is `BZR_ROOT/alpha/trunk`); Trac sees the same paths because each Bazaar
  repository's `scope` is its place in the tree;
* a user is matched as themselves, `$authenticated` and `*` (anonymous as
  `$anonymous` and `*`); within a section any matching line that grants
  wins; the nearest section (walking up from the path) with a matching
  line decides; a directory can be read when something below it can be
  (so it can be browsed into), its files cannot.

Stricter than Trac where Trac's reading would make the two disagree: the
file must say at `[/]` what `*` may do, so every path is decided by the
file (Trac hands an undecided path to its other policies, the smart server
would refuse it); per-repository sections (`[name:/path]`) are refused,
since only Trac knows repository names; so are `~` (inverted) subjects,
which Trac does not understand. A file that cannot be read or has an error
denies everything until it is fixed (and says so once in the log).
"""

from __future__ import annotations

import configparser
import os
import threading
from dataclasses import dataclass
from typing import Literal

from trac_breezy import log, one_line

Access = Literal["r", "w"]
READ: Access = "r"
WRITE: Access = "w"
ANONYMOUS_SUBJECTS = ("$anonymous", "*")
_SPECIAL = ("$anonymous", "$authenticated", "*")
# A user no rule names ("/" is in no user name): stands for every such user.
_ANY_OTHER_USER = "/any other user"
_RIGHTS = ("", "r", "rw", "wr")


class AuthzError(ValueError):
    """The rule file cannot be used; the message is one line naming the fix."""


def subjects(user: str | None) -> tuple[str, ...]:
    """The names a request's user is matched as, most specific first (Trac's order)."""
    return ANONYMOUS_SUBJECTS if user is None else (user, "$authenticated", "*")


def parent_paths(path: str) -> list[str]:
    """`path` and each of its parents, nearest first, with and without a trailing "/".

    The order of Trac's `svn_authz.parent_iter` for a path it has made end in "/".
    """
    found, path = [], path if path == "/" else path.rstrip("/") + "/"
    while True:
        found.append(path)
        if path == "/":
            return found
        path = path[:-1]
        found.append(path)
        path = path[: path.rfind("/") + 1]


def _join(place: str, rel: str) -> str:
    """`place` with `rel` ("" or "/x/y") below it."""
    return (place.rstrip("/") + rel) or "/"


@dataclass(frozen=True)
class Rules:
    """The sections of a rule file: path -> user (groups resolved) -> rights ("r", "w")."""

    sections: dict[str, dict[str, frozenset[str]]]

    def may(self, user: str | None, path: str, access: Access) -> bool:
        """May `user` (None: anonymous) read or write `path` (of the tree, "/" first)?"""
        names = subjects(user)
        if access == READ and self._readable_below(names, path):
            return True
        for section_path in parent_paths(path):
            decided = self._decide(names, section_path, access)
            if decided is not None:
                return decided
        return False  # never reached for a checked file: `[/]` decides for `*`

    def may_lead(self, source: str, target: str) -> bool:
        """May a branch at `source` lead its readers to `target` (a reference, stacking)?

        Why: whoever follows a reference or a stacked-on location reads the
        target under the source's rules, so it may be followed only when no
        one who may read something at the source is refused the same thing
        at the target: every user the rules name, anonymous, and any other
        user, for the place itself, its `.bzr` and each path the rules name
        below either.
        """
        source, target = source.rstrip("/") or "/", target.rstrip("/") or "/"
        inner = {"", "/.bzr"}
        for place in (source, target):
            below = place if place == "/" else place + "/"
            inner |= {
                "/" + p[len(below) :].strip("/") for p in self.sections if p.startswith(below)
            }
        named = {name for rights in self.sections.values() for name in rights}
        people = [None, _ANY_OTHER_USER, *sorted(n for n in named if n not in _SPECIAL)]
        return all(
            self.may(user, _join(target, rel), READ)
            for rel in inner
            for user in people
            if self.may(user, _join(source, rel), READ)
        )

    def has_sections_below(self, path: str) -> bool:
        """Do rules name a path strictly below `path` (renaming it would carry them along)?"""
        below = path if path == "/" else path.rstrip("/") + "/"
        return any(p.startswith(below) and p.rstrip("/") != path.rstrip("/") for p in self.sections)

    def readable_paths(self, user: str | None) -> list[str]:
        """The section paths `user` may read: where a browser may find something."""
        return sorted(p for p in self.sections if self.may(user, p, READ))

    def _decide(self, names: tuple[str, ...], section_path: str, access: Access) -> bool | None:
        section = self.sections.get(section_path)
        if not section:
            return None
        matched = [section[name] for name in names if name in section]
        if not matched:
            return None
        return any(access in rights for rights in matched)

    def _readable_below(self, names: tuple[str, ...], path: str) -> bool:
        """Something below `path` is readable, so `path` itself can be browsed into."""
        below = path if path == "/" else path.rstrip("/") + "/"
        return any(
            section_path.startswith(below) and self._decide(names, section_path, READ)
            for section_path in self.sections
        )


def parse(text: str, source: str = "the rule file") -> Rules:
    """The rules of an authz file's `text`, checked; AuthzError names what to fix."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00")
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # user names keep case
    try:
        parser.read_string(text, source)
    except configparser.Error as error:
        raise AuthzError(f"{source}: {one_line(error)}") from None
    groups = {name: _entries(value) for name, value in _items(parser, "groups")}
    aliases = {name: value.strip() for name, value in _items(parser, "aliases")}
    sections: dict[str, dict[str, frozenset[str]]] = {}
    for name in parser.sections():
        if name in ("groups", "aliases"):
            continue
        _check_section_name(name, source)
        section = sections.setdefault(name, {})
        for subject, value in parser.items(name):
            rights = _rights(value, subject, name, source)
            for user in _resolve(subject, groups, aliases, set(), name, source):
                section[user] = section.get(user, frozenset()) | rights
    if "*" not in sections.get("/", {}):
        raise AuthzError(
            f"{source}: say at [/] what everybody may do (`* =` for nothing, `* = r` to read), "
            "so that every path of the tree is decided by the file"
        )
    return Rules(sections)


def _items(parser: configparser.ConfigParser, section: str) -> list[tuple[str, str]]:
    return parser.items(section) if parser.has_section(section) else []


def _entries(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def _check_section_name(name: str, source: str) -> None:
    if ":" in name:
        raise AuthzError(
            f"{source}: [{name}]: name paths from the top of the Bazaar tree ([/project/branch]); "
            "sections for one repository ([name:/path]) would apply in Trac only"
        )
    if not name.startswith("/"):
        raise AuthzError(f"{source}: [{name}]: a section is [groups], [aliases] or a path, /...")


def _rights(value: str, subject: str, section: str, source: str) -> frozenset[str]:
    rights = value.strip()
    if rights not in _RIGHTS:
        raise AuthzError(f"{source}: [{section}] {subject} = {rights}: rights are r, rw or empty")
    return frozenset(rights)


def _resolve(
    subject: str,
    groups: dict[str, list[str]],
    aliases: dict[str, str],
    seen: set[str],
    section: str,
    source: str,
) -> list[str]:
    """The user names (or `*`, `$anonymous`, `$authenticated`) `subject` stands for."""
    where = f"{source}: [{section}] {subject}"
    if subject.startswith("~"):
        raise AuthzError(f"{where}: `~` (everyone but) is not understood by Trac; name users")
    if subject.startswith("&"):
        if subject[1:] not in aliases:
            raise AuthzError(f"{where}: no such alias in [aliases]")
        return [aliases[subject[1:]]]
    if not subject.startswith("@"):
        return [subject]
    name = subject[1:]
    if name not in groups:
        raise AuthzError(f"{where}: no such group in [groups]")
    if name in seen:
        return []
    seen.add(name)
    return [
        user
        for member in groups[name]
        for user in _resolve(member, groups, aliases, seen, "groups", source)
    ]


# Rules that grant nothing: what a broken or missing file means.
DENY_ALL = Rules({"/": {"*": frozenset()}})


Version = tuple[int, int, int, int] | None  # inode, device, size, mtime; None: unreadable
_NOT_READ: Version = (-1, -1, -1, -1)


class RuleFile:
    """The rules of one file, reread whenever it changes (no restart).

    Checked on every use by one `stat`: a file replaced, edited in place or
    touched is read again. A file that cannot be read or used denies
    everything and says why once in the log, until it is fixed.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._version: Version = _NOT_READ
        self._rules = DENY_ALL

    def rules(self) -> Rules:
        version = self._stat()
        if version != self._version:
            with self._lock:
                if version != self._version:
                    self._rules = self._read()
                    self._version = version
        return self._rules

    def _stat(self) -> Version:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)

    def _read(self) -> Rules:
        try:
            with open(self.path, encoding="utf-8") as file:
                rules = parse(file.read(), self.path)
        except (OSError, UnicodeError, AuthzError) as error:
            why = error.strerror if isinstance(error, OSError) else one_line(error)
            log(f"access rules {self.path}: {why}; every path is denied until it is fixed")
            return DENY_ALL
        log(f"access rules read from {self.path} ({len(rules.sections)} paths)")
        return rules


_files: dict[str, RuleFile] = {}
_files_lock = threading.Lock()


def rule_file(path: str) -> RuleFile:
    """The one `RuleFile` of `path` in this process (shared by every thread)."""
    with _files_lock:
        found = _files.get(path)
        if found is None:
            found = _files[path] = RuleFile(path)
        return found
