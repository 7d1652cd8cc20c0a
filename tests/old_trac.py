"""Trac environments as an older Trac left them, for the upgrade tests.

Trac 1.6 only runs on Python 3 and older Tracs only on Python 2, so an
environment from Trac 1.2 cannot be made here. What Trac 1.6 upgrades in one
is known exactly, though: `trac/upgrades/db44.py` (the `enum` table's
`description` column, and report queries that name `t.description`) and
`db45.py` (Jinja2 syntax in the notification subject templates). This undoes
both in a fresh Trac 1.6 environment, giving the schema and the trac.ini of
database version 43, which Trac 1.6 must upgrade before it serves.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

OLD_VERSION = 43
TRAC_ADMIN = str(Path(sys.executable).with_name("trac-admin"))

FAILING_PLUGIN = '''\
"""A plugin whose upgrade fails half-way through Trac's upgrade."""
from trac.core import Component, implements
from trac.env import IEnvironmentSetupParticipant


class FailingUpgrade(Component):
    implements(IEnvironmentSetupParticipant)

    def environment_created(self):
        pass

    def environment_needs_upgrade(self):
        return True

    def upgrade_environment(self):
        raise RuntimeError("the plugin upgrade broke on purpose")
'''


def make_old_environment(path: Path, title: str = "Old Project") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [TRAC_ADMIN, str(path), "initenv", title, "sqlite:db/trac.db"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [TRAC_ADMIN, str(path), "wiki", "remove", "TracUpgrade"], check=True, capture_output=True
    )
    ini = path / "conf" / "trac.ini"
    text = ini.read_text(encoding="utf-8")
    text = text.replace(
        "ticket_subject_template = ${prefix} #${ticket.id}: ${summary}",
        "ticket_subject_template = $prefix #$ticket.id: $summary",
    )
    ini.write_text(text, encoding="utf-8")
    with sqlite3.connect(path / "db" / "trac.db") as db:
        db.execute("ALTER TABLE enum DROP COLUMN description")
        db.execute(
            "UPDATE report SET query = replace(query, 't.description AS _description', "
            "'description AS _description')"
        )
        db.execute(
            "UPDATE system SET value = ? WHERE name = 'database_version'", (str(OLD_VERSION),)
        )


def add_failing_plugin(path: Path) -> None:
    (path / "plugins" / "failing_upgrade.py").write_text(FAILING_PLUGIN, encoding="utf-8")


def database_version(path: Path) -> int:
    with sqlite3.connect(path / "db" / "trac.db") as db:
        (value,) = db.execute("SELECT value FROM system WHERE name = 'database_version'").fetchone()
    return int(value)


def enum_columns(path: Path) -> list[str]:
    with sqlite3.connect(path / "db" / "trac.db") as db:
        return [row[1] for row in db.execute("PRAGMA table_info(enum)")]


def has_wiki_page(path: Path, name: str) -> bool:
    with sqlite3.connect(path / "db" / "trac.db") as db:
        return db.execute("SELECT count(*) FROM wiki WHERE name = ?", (name,)).fetchone()[0] > 0


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under `root` with a hash of its content (Trac's own log aside)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.parent.name != "log"
    }
