"""What a visitor of the pages for browsers may see of the tree (AUTHZ_FILE).

Why this exists: the front page and the folder pages list branches, their
newest revisions and files; with a rule file they must show no more than
brz would let the same visitor read. The rules are the smart server's
(`trac_breezy.authz`, reread when the file changes) and the paths the same
(the tree's, from its top). A folder is shown when something below it can be
read (so it can be browsed into), a file when it can be read itself, and a
branch (its newest revision, its commands) when its data, `.bzr`, can be
read, which is what `brz branch` reads. Without a rule file, everything is
shown, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from trac_breezy.authz import READ, Rules, rule_file


def tree_path(relpath: str | None) -> str:
    """A folder's path below the tree's root ("code/trunk") as the rules name it."""
    return "/" + "/".join(part for part in (relpath or "").split("/") if part)


@dataclass(frozen=True)
class Visitor:
    """Who is looking (None: anonymous) and the rules in force (None: no rule file)."""

    rules: Rules | None
    user: str | None = None

    def may_see(self, relpath: str) -> bool:
        """A folder (something below it is readable) or a file (readable itself)."""
        return self.rules is None or self.rules.may(self.user, tree_path(relpath), READ)

    def may_see_branch(self, relpath: str) -> bool:
        """A branch's revisions: what `brz branch` reads, its `.bzr`."""
        return self.may_see(tree_path(relpath).rstrip("/") + "/.bzr")


# No rule file: everything is shown.
EVERYONE = Visitor(None)


def visitor(authz_file: str, user: str | None = None) -> Visitor:
    """The visitor `user` under the rule file `authz_file` ("" : no rules)."""
    return Visitor(rule_file(authz_file).rules() if authz_file else None, user or None)
