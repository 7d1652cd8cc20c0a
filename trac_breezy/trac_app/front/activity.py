"""A project's latest activity that anonymous visitors may see.

Why this exists: the front page says, per project, what changed last and
when: the newest of its wiki edits, ticket changes and commits. Trac's own
timeline would answer that too, but asks every event provider for a whole
period; this asks the database for one row each (and each repository for its
newest changeset), which keeps the front page cheap to render. The front
page knows no user (Trac's sessions live below each project's path), so only
what Trac lets `anonymous` see is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from trac.core import TracError
from trac.env import Environment
from trac.perm import PermissionCache
from trac.util.datefmt import from_utimestamp
from trac.util.text import obfuscate_email_address, shorten_line
from trac.versioncontrol.api import RepositoryManager
from trac.web.href import Href

# Rows read per kind: a few, in case a fine-grained policy hides the newest.
_CANDIDATES = 5


@dataclass(frozen=True)
class Event:
    """One change, as the front page shows it."""

    what: str  # "ticket #3", "wiki page WikiStart", "changeset [12]"
    detail: str  # its summary or message, one line
    href: str  # URL path of the change's page
    time: datetime
    author: str = ""  # with e-mail addresses shortened, as Trac shows them to anonymous


@dataclass(frozen=True)
class _RowKind:
    """A kind of change kept as rows in the database: tickets, wiki edits."""

    realm: str  # Trac's resource realm, also the first segment of its URL
    action: str  # the permission that lets `anonymous` see one
    label: str  # `Event.what`, formatted with the resource id
    # Resource id, detail, time, author: newest first, at most %s rows.
    sql: str


_TICKET_CHANGES = _RowKind(
    "ticket",
    "TICKET_VIEW",
    "ticket #{}",
    "SELECT id, summary, changetime, '' FROM ticket ORDER BY changetime DESC, id LIMIT %s",
)
_WIKI_EDITS = _RowKind(
    "wiki",
    "WIKI_VIEW",
    "wiki page {}",
    "SELECT name, comment, time, author FROM wiki ORDER BY time DESC, name LIMIT %s",
)


def latest_row(env: Environment, perm: PermissionCache, href: Href, kind: _RowKind) -> Event | None:
    """The newest change of `kind` that `perm` lets be seen."""
    for resource_id, detail, time, author in env.db_query(kind.sql, (_CANDIDATES,)):
        if kind.action in perm(kind.realm, resource_id):
            return Event(
                kind.label.format(resource_id),
                shorten_line(detail or ""),
                href(kind.realm, resource_id),
                from_utimestamp(time),
                obfuscate_email_address(author or ""),
            )
    return None


def latest_changesets(
    env: Environment, perm: PermissionCache, href: Href, reponames: Iterable[str]
) -> Iterator[Event]:
    """The newest changeset of each repository (that can be read)."""
    manager = RepositoryManager(env)
    for reponame in reponames:
        try:
            repos = manager.get_repository(reponame)
            rev = repos.youngest_rev if repos else None
            if rev is None:
                continue
            changeset = repos.get_changeset(rev)
        except TracError:
            continue  # not pushed yet, or unreadable: the front page says so elsewhere
        if "CHANGESET_VIEW" not in perm(changeset.resource):
            continue
        label = repos.display_rev(rev) + (f"/{reponame}" if reponame else "")
        yield Event(
            f"changeset [{label}]",
            shorten_line(changeset.message or ""),
            href.changeset(rev, reponame or None),
            changeset.date,
            obfuscate_email_address(changeset.author or ""),
        )


def latest(env: Environment, href: Href, reponames: Iterable[str]) -> Event | None:
    """The newest change in the project that `anonymous` may see, if any."""
    perm = PermissionCache(env, "anonymous")
    candidates = [
        latest_row(env, perm, href, _TICKET_CHANGES),
        latest_row(env, perm, href, _WIKI_EDITS),
        *latest_changesets(env, perm, href, reponames),
    ]
    found = [event for event in candidates if event is not None]
    return max(found, key=lambda event: event.time, default=None)
