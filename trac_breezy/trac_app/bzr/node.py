"""`BzrNode` and `BzrChangeset`: a path at a revision, and a revision, for Trac.

Why this exists: Trac's browser, diff, annotate and changeset pages read a
repository through these two objects; they add Trac's view (kinds, revision
strings, properties, the last change of a directory) to what a branch hands
out (`storage`), and ask `history` for the revisions that changed a node.

File content is handed to Trac as a stream (`BranchHandle.open_file`):
Trac's browser reads ``max_preview_size`` bytes of it and its export 4 KB at
a time, so a large file is never held whole for a preview or a download.
A branch of a folder of branches that cannot be opened, or is refused
because it leads outside the repository directory, shows as an empty
directory whose ``bzr:error`` property says why; it is logged once per
request in Trac's log.

What they ask of their repository is the `Repos` protocol below (the
history's `Revisions` and a few more): see `history` for why a protocol.
"""

from __future__ import annotations

import io
import logging
import weakref
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from trac.util.datefmt import utc
from trac.versioncontrol.api import Changeset, Node

from trac_breezy.trac_app.bzr import history, storage
from trac_breezy.trac_app.bzr.errors import translates_storage_errors
from trac_breezy.trac_app.bzr.naming import norm_path, trac_path
from trac_breezy.trac_app.bzr.storage import NULL_REVISION, BranchHandle, Entry, RevInfo, join_path


class Repos(history.Revisions, Protocol):
    """What nodes and changesets ask of their repository (`BzrRepository`)."""

    multi: bool  # a folder of branches, not one branch
    log: logging.Logger  # Trac's log of the project
    reponame: str

    @property
    def handles(self) -> Mapping[str, BranchHandle]:
        """The branches, by their path in the repository."""
        ...

    def home(self, revid: bytes) -> BranchHandle:
        """The branch a revision is shown in."""
        ...

    def folder_children(self, path: str, revid: bytes | None) -> Iterator[BzrNode]:
        """The branches and folders of branches right below a folder."""
        ...

    def node_in(self, handle: BranchHandle, revid: bytes, inner: str) -> BzrNode:
        """The node at `inner` in `handle` at `revid`."""
        ...

    def get_node(self, path: str | None, rev: object = None) -> BzrNode: ...


# Handles (one request each) whose error has been logged.
_logged_errors: weakref.WeakSet[BranchHandle] = weakref.WeakSet()


def revision_date(info: RevInfo) -> datetime:
    """When a revision was committed, in UTC as Trac wants it."""
    return datetime.fromtimestamp(info.timestamp, utc)


def log_error_once(repos: Repos, handle: BranchHandle) -> None:
    """Put why a branch cannot be shown into Trac's log, once per request."""
    if handle.error is not None and handle not in _logged_errors:
        _logged_errors.add(handle)
        repos.log.warning("Bazaar repository %s: %s", repos.reponame or "(default)", handle.error)


@translates_storage_errors
class BzrNode(Node):
    """A file or directory of a branch at a revision, or a folder of branches."""

    def __init__(
        self,
        repos: Repos,
        path: str,
        rev: str | None,
        kind: str,
        handle: BranchHandle | None,
        inner: str,
        revid: bytes | None,
        entry: Entry | None = None,
    ) -> None:
        self.handle = handle
        self.inner = inner
        self.revid = revid
        self.entry = entry
        self._created: bytes | None = None
        super().__init__(repos, trac_path(path), rev, kind)
        self.created_path = self.path
        if handle is not None:
            log_error_once(repos, handle)

    repos: Repos

    @property
    def _bare(self) -> str:
        return norm_path(self.path)

    # where and when

    @property
    def created_rev(self) -> str | None:
        return self.repos.rev_string(self._created_revid())

    def _created_revid(self) -> bytes | None:
        if self._created is None:
            self._created = self._find_created()
        return self._created

    def _find_created(self) -> bytes | None:
        handle, revid = self.handle, self.revid
        if revid is None:
            return None
        if handle is None:  # the newest branch state under a folder of branches
            states = [node.revid for node in self.get_entries() if node.revid is not None]
            return max(states, key=self.repos.multi_index().pos.__getitem__, default=None)
        if not self.inner:
            return revid
        if self.isfile:
            assert self.entry is not None
            return self.entry.revision
        return handle.last_changes(revid).get(self.inner, revid)

    def get_last_modified(self) -> datetime | None:
        created = self._created_revid()
        if created is None:
            return None
        return revision_date((self.handle or self.repos.home(created)).revinfo(created))

    # content

    def get_content(self) -> BinaryIO | None:
        """A stream; Trac reads what it needs and closes it."""
        if not self.isfile:
            return None
        handle, entry = self.handle, self.entry
        assert handle is not None and self.revid is not None and entry is not None
        if entry.kind == "symlink":
            return io.BytesIO(self._link_text())
        return handle.open_file(self.revid, self.inner)

    def _link_text(self) -> bytes:
        """What a symlink shows as: its target, the way Subversion stores one."""
        assert self.entry is not None
        return f"link {self.entry.target or ''}".encode()

    def get_content_length(self) -> int | None:
        """From the inventory: the file is not read."""
        if not self.isfile:
            return None
        assert self.entry is not None
        if self.entry.kind == "symlink":
            return len(self._link_text())
        return self.entry.size

    def get_content_type(self) -> str | None:
        return None  # Trac guesses from the name and content

    def content_key(self) -> tuple[Any, ...]:
        """Equal for two files with equal content."""
        entry = self.entry
        if entry is None:
            return (self.kind,)
        if entry.kind == "file" and self.handle is not None and self.revid is not None:
            sha1 = self.handle.file_sha1(self.revid, self.inner)
            return entry.kind, sha1, entry.executable
        return entry.kind, entry.target, entry.executable

    def get_properties(self) -> dict[str, str]:
        props = {}
        if self.entry is not None:
            if self.entry.executable:
                props["bzr:executable"] = "*"
            if self.entry.kind == "symlink":
                props["bzr:symlink-target"] = self.entry.target or ""
        if self.handle is not None and not self.inner and self.repos.multi:
            props["bzr:branch"] = self.handle.relpath
            if self.handle.error is not None:
                props["bzr:error"] = self.handle.error
        return props

    # directories

    def get_entries(self) -> Iterator[BzrNode]:
        if not self.isdir:
            return
        handle = self.handle
        if handle is None:
            yield from self.repos.folder_children(self._bare, self.revid)
            return
        if self.revid is None or (self.entry is not None and self.entry.kind == "tree-reference"):
            return  # an empty branch, or a nested tree this backend does not enter
        for name, entry in handle.child_entries(self.revid, self.inner):
            inner = join_path(self.inner, name)
            path = join_path(handle.relpath, inner)
            kind = storage.node_kind(entry.kind)  # equal to Trac's Node.DIRECTORY / Node.FILE
            yield BzrNode(self.repos, path, self.rev, kind, handle, inner, self.revid, entry)

    def subtree(self) -> dict[str, tuple[Any, ...]]:
        """Path (relative to this directory) -> content key, for diffs."""
        assert self.handle is not None and self.revid is not None
        return self.handle.subtree(self.revid, self.inner)

    def child(self, rel: str) -> BzrNode:
        handle = self.handle
        assert handle is not None and self.revid is not None
        return self.repos.node_in(handle, self.revid, join_path(self.inner, rel))

    # history

    def get_history(self, limit: int | None = None) -> Iterator[tuple[str, str, str]]:
        for count, item in enumerate(self._history()):
            if limit is not None and count >= limit:
                return
            yield item

    def _history(self) -> Iterator[tuple[str, str, str]]:
        handle, revid = self.handle, self.revid
        if handle is None:
            return history.folder_history(self.repos, self._bare, revid)
        if revid is None:
            return iter(())
        if not self.inner:
            return history.root_history(self.repos, handle, revid, self.path)
        if self.isdir:
            return history.dir_history(self.repos, handle, revid, self.inner)
        assert self.entry is not None
        return history.file_history(self.repos, handle, self.entry)

    def get_annotations(self) -> list[str]:
        handle = self.handle
        if not self.isfile or handle is None or self.revid is None:
            return []
        return [
            self.repos.rev_string(revid) or "" for revid in handle.annotate(self.revid, self.inner)
        ]


@translates_storage_errors
class BzrChangeset(Changeset):
    """A Bazaar revision; its changes are against its first (left) parent."""

    def __init__(self, repos: Repos, handle: BranchHandle, revid: bytes, info: RevInfo) -> None:
        self.handle = handle
        self.revid = revid
        self.info = info
        rev = repos.rev_string(revid)
        super().__init__(repos, rev, info.message, info.author, revision_date(info))

    repos: Repos

    def get_changes(self) -> Iterator[tuple[str, str, str, str | None, str | None]]:
        handle = self.handle
        parent = self.repos.rev_string(handle.index.first_parent(self.revid))
        prefix = handle.relpath
        for change in sorted(handle.changes(self.revid), key=lambda c: (c.path, c.change)):
            # change.kind and change.change are equal to Trac's kinds
            if change.change == storage.ADD:
                yield join_path(prefix, change.path), change.kind, change.change, None, None
            else:
                assert change.base_path is not None
                base = join_path(prefix, change.base_path)
                yield join_path(prefix, change.path), change.kind, change.change, base, parent

    def get_properties(self) -> dict[str, Any]:
        info, index, rev_of = self.info, self.handle.index, self.repos.rev_string
        props: dict[str, Any] = {}
        parents = index.parents.get(self.revid, ())
        if len(parents) > 1:
            props["Parents"] = [rev_of(p) for p in parents]
            props["Merged"] = [rev_of(r) for r in index.merged(self.revid)]
        if index.depth.get(self.revid):
            merged_in = index.merged_in(self.revid)
            if merged_in is not None:
                props["Merged in"] = [rev_of(merged_in)]
        nick = info.properties.get("branch-nick")
        if nick:
            props["Branch nick"] = nick
        if info.committer and info.committer != info.author:
            props["Committer"] = info.committer
        if len(info.authors) > 1:
            props["Authors"] = ", ".join(info.authors)
        bugs = info.properties.get("bugs")
        if bugs:
            props["Bugs"] = ", ".join(line for line in bugs.splitlines() if line)
        return props

    def get_branches(self) -> list[tuple[str, bool]]:
        if not self.repos.multi:
            return []
        return [
            (handle.relpath, handle.tip == self.revid)
            for handle in self.repos.handles.values()
            if handle.tip != NULL_REVISION and self.revid in handle.index
        ]

    def get_tags(self) -> list[str]:
        return sorted(self.handle.tags().get(self.revid, []))
