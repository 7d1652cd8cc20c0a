"""With BZR_ANONYMOUS_READ=false, Trac's source views ask anonymous visitors to log in.

Why: that setting makes brz ask every client for a password, but Trac's
default permissions give anonymous `BROWSER_VIEW`, `FILE_VIEW`, `LOG_VIEW`
and `CHANGESET_VIEW`, so the same code stayed readable in Trac's browser,
file views, `/export/`, log, changesets and their zip, the timeline and the
search. Whoever turns anonymous reads off means the code is private. This
policy refuses those permissions to anonymous when `[bzr] anonymous_read`
is false (the shared trac.ini sets it from BZR_ANONYMOUS_READ and puts the
policy first in `[trac] permission_policies`; the start keeps it first in a
project's own list, admin/global_config.py). It only ever refuses, so wiki,
tickets, milestones and the front page stay as the other policies say, and
logged-in users get what the other policies (and AUTHZ_FILE) give them.
"""

from __future__ import annotations

from trac.config import BoolOption
from trac.core import Component, implements
from trac.perm import IPermissionPolicy, PermissionCache
from trac.resource import Resource

POLICY = "PrivateSourcePolicy"
# Every permission behind a page that shows what a branch holds (Trac 1.6:
# browser and /export/ FILE_VIEW and BROWSER_VIEW, log LOG_VIEW, changeset,
# its zip, timeline and search CHANGESET_VIEW).
SOURCE_ACTIONS = frozenset({"BROWSER_VIEW", "FILE_VIEW", "LOG_VIEW", "CHANGESET_VIEW"})


class PrivateSourcePolicy(Component):
    """Refuse the source views to anonymous while `[bzr] anonymous_read` is false."""

    implements(IPermissionPolicy)

    anonymous_read = BoolOption(
        "bzr",
        "anonymous_read",
        "true",
        """Whether anonymous visitors may read the code (BZR_ANONYMOUS_READ;
        the shared trac.ini sets it). False: Trac's source views need a login.""",
    )

    def check_permission(
        self, action: str, username: str, resource: Resource | None, perm: PermissionCache
    ) -> bool | None:
        if username == "anonymous" and action in SOURCE_ACTIONS and not self.anonymous_read:
            return False
        return None
