"""What a look at mounted data found: one line per thing, and what will happen to it.

Moving an old host in (docs/migration.md) means reading data that older
Tracs, older bzr clients and Apache's `htpasswd` wrote. Each check (the
projects, the Bazaar tree, the users file) reports what it found as
`Finding`s, so that the dry run (`trac-breezy-migrate --check`) prints the
very lines the start-up will act on and log, before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Action(Enum):
    """What start-up does about a finding (the dry run says it in advance)."""

    OK = "ok"  # served as it is
    REPAIR = "repair"  # changed at start, a copy of what it was kept first
    UPGRADE = "upgrade"  # Trac's database upgrade, after a hotcopy
    SKIP = "skip"  # left as it is and not used (a Python 2 plugin, say)
    REFUSE = "refuse"  # cannot be served; the text says what to do


@dataclass(frozen=True)
class Finding:
    """One thing found in mounted data.

    `subject` names where ("project Foo", "tree", "users file"); `text` is one
    line for people: what was found and, unless the action is OK, what to do
    or what start-up will do.
    """

    subject: str
    action: Action
    text: str

    def line(self) -> str:
        return f"{self.subject}: {self.action.value}: {self.text}"
