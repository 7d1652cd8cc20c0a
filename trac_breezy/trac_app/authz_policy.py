"""A changeset whose changes the rule file hides from its user is hidden too.

Why this exists: Trac's `AuthzSourcePolicy` grants `CHANGESET_VIEW` when one
of a changeset's changed paths is readable, and otherwise has no answer, so
the next policy (`DefaultPermissionPolicy`) grants it: a commit to `/alpha`
showed its message, author and time in bob's timeline and changeset pages,
though brz refuses him every byte of `/alpha`. This policy, after it in
`[trac] permission_policies` (the shared trac.ini puts both first when
AUTHZ_FILE is set), refuses such a changeset; a changeset with no changes
counts as a change of its repository's root. It only ever refuses: where a
path is readable, the other policies decide as before. Paths are checked
through Trac's own permissions (`FILE_VIEW` on each path), so with the
Bazaar backend's `scope` they are the tree's paths, as in brz.
"""

from __future__ import annotations

from trac.core import Component, TracError, implements
from trac.perm import IPermissionPolicy, PermissionCache
from trac.resource import Resource
from trac.versioncontrol.api import RepositoryManager

POLICY = "AuthzChangesetPolicy"


class AuthzChangesetPolicy(Component):
    """Refuse `CHANGESET_VIEW` when no changed path may be read (`[svn] authz_file`)."""

    implements(IPermissionPolicy)

    def check_permission(
        self, action: str, username: str, resource: Resource | None, perm: PermissionCache
    ) -> bool | None:
        if action != "CHANGESET_VIEW" or resource is None or resource.realm != "changeset":
            return None
        if not self.config.get("svn", "authz_file") or resource.parent is None:
            return None
        paths = self._changed_paths(resource)
        if paths is None:
            return None
        source = resource.parent
        readable = any("FILE_VIEW" in perm(source.child("source", path)) for path in paths)
        return None if readable else False

    def _changed_paths(self, resource: Resource) -> list[str] | None:
        """The paths the changeset changes ("" for its root if none); None: no such one."""
        try:
            repos = RepositoryManager(self.env).get_repository(resource.parent.id)
            if repos is None:
                return None
            changes = repos.get_changeset(resource.id).get_changes()
            return [path for path, *_ in changes] or [""]
        except TracError:
            return None  # Trac shows its error page, as AuthzSourcePolicy lets it
