"""The rule file (trac_breezy.authz): Trac's reading of it, and what we refuse.

Every read decision is compared with Trac's own code (`svn_authz.parse` and
the walk of `AuthzSourcePolicy.check_permission`, repeated here over Trac's
parsed dict), so brz and Trac's pages cannot disagree on who reads what.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest
from trac.versioncontrol import svn_authz

from trac_breezy.authz import READ, WRITE, AuthzError, parse, rule_file

TEAM_RULES = """\
[groups]
devs = alice, @leads
leads = carol

[aliases]
robot = ci-bot

[/]
* =

[/alpha]
@devs = rw
bob = r

[/alpha/secret]
@devs =
carol = rw

[/beta]
alice = r
bob = rw
&robot = r

[/public]
* = r
$authenticated = rw

[/public/drafts/]
$anonymous =
"""

USERS = [None, "alice", "bob", "carol", "ci-bot", "dave"]
PATHS = [
    "/",
    "/alpha",
    "/alpha/trunk",
    "/alpha/trunk/.bzr/branch/last-revision",
    "/alpha/secret",
    "/alpha/secret/x",
    "/alphabet",
    "/beta",
    "/beta/trunk",
    "/public",
    "/public/drafts",
    "/public/drafts/a",
    "/gamma",
]


def trac_may_read(authz: dict, user: str | None, path: str) -> bool:
    """Trac 1.6's AuthzSourcePolicy.check_path for the default repository, scope "/"."""
    usernames = ("$anonymous", "*") if user is None else (user, "$authenticated", "*")
    sections_of = authz.get("", {})

    def check_path_0(spath: str) -> bool | None:
        section = sections_of.get(spath)
        if not section:
            return None
        denied = False
        for name in usernames:
            if name in section:
                if section[name]:
                    return True
                denied = True
        return False if denied else None

    path = path if path == "/" else path + "/"
    for spath in sections_of:
        if spath.startswith(path) and check_path_0(spath) is True:
            return True
    for spath in svn_authz.parent_iter(path):
        result = check_path_0(spath)
        if result is not None:
            return result
    return False  # Trac: undecided (its other policies); the file always decides at [/]


def test_reads_are_decided_as_trac_decides(tmp_path: Path) -> None:
    file = tmp_path / "authz"
    file.write_text(TEAM_RULES)
    trac_authz = svn_authz.parse(str(file), {""})
    ours = parse(TEAM_RULES)
    for user, path in itertools.product(USERS, PATHS):
        assert ours.may(user, path, READ) == trac_may_read(trac_authz, user, path), (user, path)


@pytest.mark.parametrize(
    ("user", "path", "allowed"),
    [
        ("alice", "/alpha/trunk/.bzr/branch/lock", True),
        ("carol", "/alpha/trunk", True),  # through @leads inside @devs
        ("bob", "/alpha/trunk", False),
        ("alice", "/alpha/secret/x", False),
        ("carol", "/alpha/secret/x", True),
        ("alice", "/beta/trunk", False),
        ("bob", "/beta/trunk", True),
        ("ci-bot", "/beta", False),
        (None, "/public/x", False),
        ("dave", "/public/x", True),
        ("dave", "/", False),
        ("alice", "/alphabet", False),  # a sibling that merely starts alike
    ],
)
def test_writes(user: str | None, path: str, allowed: bool) -> None:
    assert parse(TEAM_RULES).may(user, path, WRITE) is allowed


def test_a_directory_can_be_read_when_something_below_it_can() -> None:
    rules = parse(TEAM_RULES)
    assert rules.may("carol", "/alpha/secret", READ)
    assert not rules.may(None, "/", WRITE)
    assert rules.may(None, "/", READ)  # /public is below it
    assert not rules.may(None, "/alpha", READ)
    assert rules.readable_paths(None) == ["/", "/public"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[/alpha]\nalice = rw\n", "say at [/] what everybody may do"),
        ("[/]\n* =\n[code:/trunk]\nalice = r\n", "[code:/trunk]: name paths from the top"),
        ("[/]\n* =\n[alpha]\nalice = r\n", "[alpha]: a section is [groups], [aliases] or a path"),
        ("[/]\n* = x\n", "[/] * = x: rights are r, rw or empty"),
        ("[/]\n* =\n@nobody = r\n", "[/] @nobody: no such group in [groups]"),
        ("[/]\n* =\n&bot = r\n", "[/] &bot: no such alias in [aliases]"),
        ("[/]\n* =\n~alice = r\n", "`~` (everyone but) is not understood by Trac"),
        ("[/]\n* =\n[/]\n* = r\n", "section '/' already exists"),
        ("* = r\n", "File contains no section headers"),
    ],
)
def test_files_that_cannot_mean_one_thing_are_refused(text: str, expected: str) -> None:
    with pytest.raises(AuthzError) as raised:
        parse(text, "authz")
    message = str(raised.value)
    assert message.startswith("authz: ") and expected in message
    assert "\n" not in message


def test_groups_may_name_each_other_in_a_circle() -> None:
    rules = parse("[groups]\na = x, @b\nb = y, @a\n[/]\n* =\n@a = r\n")
    assert rules.may("x", "/p", READ) and rules.may("y", "/p", READ)
    assert not rules.may("z", "/p", READ)


def _rewrite(path: Path, text: str) -> None:
    """Replace `path` with `text` and make sure its mtime moves on (coarse clocks)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_the_file_is_reread_when_it_changes_and_a_broken_one_denies_all(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "authz"
    path.write_text("[/]\n* =\nalice = rw\n")
    rules = rule_file(str(path))
    assert rules.rules().may("alice", "/x", WRITE)
    _rewrite(path, "[/]\n* =\nalice = r\n")
    assert not rules.rules().may("alice", "/x", WRITE)
    assert rules.rules().may("alice", "/x", READ)
    _rewrite(path, "[/]\n* = banana\n")
    assert not rules.rules().may("alice", "/x", READ)
    path.unlink()
    assert not rules.rules().may("alice", "/x", READ)
    _rewrite(path, "[/]\n* = r\n")
    assert rules.rules().may(None, "/x", READ)
    logged = capfd.readouterr().err.splitlines()
    assert any("rights are r, rw or empty; every path is denied" in line for line in logged)
    assert any("No such file or directory; every path is denied" in line for line in logged)


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "authz"
    path.write_text("[/]\n* = r\n")
    rules = rule_file(str(path))
    first = rules.rules()
    started = time.monotonic()
    for _ in range(1000):
        assert rules.rules() is first
    assert time.monotonic() - started < 1.0
