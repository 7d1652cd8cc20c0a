"""How Trac names what the storage layer reads: paths and revision strings.

Why this exists: Trac hands the backend paths with or without slashes and
revisions as strings (or None, or "head"); the repository, its nodes and
their history all need the same few conversions, which live here.  The
revision-string encoding itself is explained in `connector` (Revision
strings).
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote, unquote

HEAD_NAMES = ("", "head", "latest", "youngest", "tip")
# A revision-id keeps only RFC 3986's unreserved characters when it becomes
# a revision string; Trac gives meaning to "@" (path@rev), "/" (rev/path),
# ":" and "," (log ranges), so those and all others are percent-encoded.
REVID_SAFE = "-._~"
REVNO_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")


def norm_path(path: str | None) -> str:
    """A repository path without surrounding slashes; '' is the root."""
    return (path or "").strip("/")


def trac_path(path: str) -> str:
    """A path as Trac shows it: the root is '/'."""
    return path or "/"


def is_head(rev: object) -> bool:
    """Does `rev` mean the youngest revision?"""
    return rev is None or (isinstance(rev, str) and rev.strip().lower() in HEAD_NAMES)


def quote_revid(revid: bytes) -> str:
    """The revision string of a revision-id in a multi-branch repository."""
    return quote(revid.decode("utf-8", "surrogateescape"), safe=REVID_SAFE)


def unquote_revid(rev: str) -> bytes:
    return unquote(rev).encode("utf-8", "surrogateescape")


def tree_scope(directory: str, tree_root: str) -> str:
    """`directory`'s place in the Bazaar tree under `tree_root` ("/alpha/trunk").

    Why: Trac's `AuthzSourcePolicy` checks `scope + path`, and the rule file
    (AUTHZ_FILE) names paths of the tree from its top, as brz's URLs do; so
    `[/alpha]` means the same in Trac as in the smart server. Both are
    resolved (symbolic links, "..") before comparing. "/" for the tree's
    root, for a directory outside the tree and when no root is known (then
    Trac checks the repository's own paths, as for any other repository).
    """
    if not tree_root:
        return "/"
    path, root = os.path.realpath(directory), os.path.realpath(tree_root)
    if path == root or os.path.commonpath([path, root]) != root:
        return "/"
    return "/" + os.path.relpath(path, root).replace(os.sep, "/")


def inside_tree(directory: str, tree_root: str) -> bool:
    """Is `directory`, links followed, `tree_root` or below it? (True without a root.)

    Why: the scope of a repository outside the tree is "/", so the rule
    file's paths would be checked against the repository's own paths: a
    repository at the tree's parent would show `/bzr/alpha/...` under the
    rules of `/`, not of `/alpha` (`connector` refuses such a repository).
    """
    if not tree_root:
        return True
    path, root = os.path.realpath(directory), os.path.realpath(tree_root)
    return os.path.commonpath([path, root]) == root
