"""The users file as an old host left it: read as Apache reads it, and judged.

Old hosts bring the htpasswd file Apache's `htpasswd` made over the years:
apr1 MD5 (`-m`), SHA-1 (`-s`), crypt (`-d`), bcrypt (`-B`), sometimes plain
text (`-p`), with comments, blank lines, Windows line endings and, from a
Windows editor, a UTF-8 byte order mark. Apache's file provider reads each
line with `ap_cfg_getline` (leading and trailing white space, `\\r` included,
dropped), skips blank lines and lines that start with `#`, takes the name up
to the first colon and the hash up to the next one, and uses the *first*
line that names a user; Apache on Windows skips a leading byte order mark
(`ap_pcfg_openfile`). `lines()` reads the file the same way (so do
trac_breezy/passwords.py, which Apache runs, and `trac-breezy-user`), and
`inspect()` says, for the dry run and the start, which lines work here.

What works here is what APR's `apr_password_validate` accepts on Linux:
bcrypt, apr1, `{SHA}` and whatever libcrypt knows (DES crypt, `$1$`, `$5$`,
`$6$`, yescrypt). Plain text worked only on Windows and NetWare builds of
Apache; on Linux APR hands it to crypt(), which never matches.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from trac_breezy import open_regular
from trac_breezy.admin.findings import Action, Finding

BOM = b"\xef\xbb\xbf"
SUBJECT = "users file"
REWRITE = "`trac-breezy-user passwd NAME` rewrites a user's line with bcrypt"

# Kinds APR checks on Linux, by how the hash starts; names as people know them.
_PREFIXES = (
    (("$2y$", "$2a$", "$2b$"), "bcrypt"),
    (("$apr1$",), "apr1 (MD5)"),
    (("{SHA}",), "SHA-1"),
    (("$1$",), "crypt MD5"),
    (("$5$",), "crypt SHA-256"),
    (("$6$",), "crypt SHA-512"),
    (("$y$", "$7$", "$gy$"), "yescrypt"),
)
# Traditional DES crypt (`htpasswd -d`): two salt characters and eleven more.
_DES_CRYPT = re.compile(r"[./0-9A-Za-z]{13}")
PLAIN = "plain text"
UNKNOWN = "unknown scheme"
MALFORMED = "malformed"
NOT_WORKING = (PLAIN, UNKNOWN, MALFORMED)


@dataclass(frozen=True)
class UserLine:
    """One line that names a user: its number in the file, the name, the hash
    (None when the line has no colon: Apache skips it)."""

    number: int
    name: str
    hashed: str | None


def lines(data: bytes) -> list[UserLine]:
    """The user lines of htpasswd bytes, in order, read as Apache reads them.

    A line with no colon names nobody (Apache never matches it); it is kept,
    with no hash, so that `inspect` can name it.
    """
    if data.startswith(BOM):
        data = data[len(BOM) :]
    found = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip()  # ap_cfg_getline: \r and other white space go
        if not line or line.startswith(b"#"):
            continue
        name, colon, rest = line.decode("utf-8", "replace").partition(":")
        found.append(UserLine(number, name, rest.split(":", 1)[0] if colon else None))
    return found


def names(data: bytes) -> list[str]:
    """The users the file names, each once, first line first (`trac-breezy-user list`)."""
    return list(dict.fromkeys(line.name for line in lines(data) if line.hashed is not None))


def kind(hashed: str | None) -> str:
    """The kind of an htpasswd hash, or PLAIN / UNKNOWN / MALFORMED."""
    if not hashed:
        return MALFORMED
    for prefixes, name in _PREFIXES:
        if hashed.startswith(prefixes):
            return name
    if _DES_CRYPT.fullmatch(hashed):
        return "crypt (DES)"
    if hashed.startswith(("$", "{")):
        return UNKNOWN
    return PLAIN


def inspect(path: Path) -> list[Finding]:
    """What the users file holds and which lines cannot work here, one line each."""
    try:
        with os.fdopen(open_regular(path), "rb") as file:  # never waiting on a FIFO
            data = file.read()
    except FileNotFoundError:
        return [Finding(SUBJECT, Action.OK, f"{path} does not exist yet; start-up creates it")]
    except OSError as error:
        why = error.strerror or "it is not a regular file"
        return [Finding(SUBJECT, Action.REFUSE, f"{path} cannot be read: {why}")]
    found = lines(data)
    counted: dict[str, UserLine] = {}
    for line in found:
        if line.hashed is not None:
            counted.setdefault(line.name, line)  # the first line counts, as in Apache
    kinds = Counter(kind(line.hashed) for line in counted.values())
    findings = [Finding(SUBJECT, Action.OK, _summary(len(counted), kinds))]
    findings += [_refusal(line) for line in found if kind(line.hashed) in NOT_WORKING]
    findings += _duplicates(found)
    if data.startswith(BOM):
        findings.append(
            Finding(
                SUBJECT,
                Action.OK,
                "starts with a UTF-8 byte order mark (a Windows editor's): it is "
                "skipped, as Apache on Windows does",
            )
        )
    return findings


def _summary(users: int, kinds: Counter[str]) -> str:
    parts = ", ".join(f"{count} {name}" for name, count in kinds.most_common())
    text = f"{users} user{'' if users == 1 else 's'}" + (f": {parts}" if parts else "")
    if any(name not in ("bcrypt", *NOT_WORKING) for name in kinds):
        text += f"; all but bcrypt are old and fast to crack: {REWRITE}"
    return text


def _refusal(line: UserLine) -> Finding:
    what = kind(line.hashed)
    if what == MALFORMED:
        why = "names no password (no colon or nothing after it)"
    elif what == PLAIN:
        why = "holds a plain-text password, which Apache on Linux never accepts"
    else:
        why = "holds a hash of a kind Apache on Linux does not know"
    name = line.name[:40]
    return Finding(
        SUBJECT,
        Action.REFUSE,
        f"line {line.number}, user {name!r}, {why}: that user cannot log in; set a new "
        f"password with `trac-breezy-user passwd {name}` (or remove the line)",
    )


def _duplicates(found: list[UserLine]) -> list[Finding]:
    first: dict[str, int] = {}
    later: dict[str, list[int]] = {}
    for line in found:
        if line.name in first:
            later.setdefault(line.name, []).append(line.number)
        else:
            first[line.name] = line.number
    return [
        Finding(
            SUBJECT,
            Action.OK,
            f"user {name!r} has {len(numbers) + 1} lines ({first[name]}, "
            f"{', '.join(map(str, numbers))}): the first counts, as in Apache; "
            f"`trac-breezy-user passwd {name}` rewrites them all",
        )
        for name, numbers in later.items()
    ]
