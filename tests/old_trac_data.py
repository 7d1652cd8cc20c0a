"""Rows an old Trac's users left, written in that Trac's schema.

The INSERTs name the old columns (`ipnr` in `wiki` and `attachment` up to
database version 41, as trac/db_default.py of 0.12.7, 1.0.20 and 1.2.6
declares), so they fail on a schema whose undo step was skipped. Times are
microseconds since the epoch, as Trac has stored them since 0.12 (int64
columns). The attachment file is where that version's Trac kept it:
`attachments/<realm>/<quoted id>/<quoted name>` before db28 moved it, and
`files/attachments/...` with SHA-1 names after (Trac 1.6's own
`Attachment._get_path`, which db28 uses).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

import old_trac_ini as ini
from trac.attachment import Attachment

T0 = 1_300_000_000_000_000  # March 2011, in microseconds
ATTACHMENT_NAME = "build notes.txt"
ATTACHMENT_BYTES = b"make && make install\n"
WIKI_PAGE = "OldHostNotes"
WIKI_TEXTS = ("= Notes =\nThe first version.\n", "= Notes =\nThe second version, by bob.\n")
TICKETS = (
    (1, "defect", "The build breaks on Windows", "alice", "bob", "new", "ACME"),
    (2, "enhancement", "Serve old branches", "bob", "alice", "closed", "Initech"),
)
CUSTOM_FIELD = "customer"


def add_old_data(path: Path) -> None:
    """Tickets (with a custom field and a comment), two wiki versions, a
    milestone, a component, an attachment (row and file), permissions and a
    session with attributes."""
    with sqlite3.connect(path / "db" / "trac.db") as db:
        (version,) = db.execute(
            "SELECT value FROM system WHERE name = 'database_version'"
        ).fetchone()
        version = int(version)
        _tickets(db)
        _wiki(db, version)
        _attachment(db, path, version)
        db.executemany(
            "INSERT INTO permission (username, action) VALUES (?, ?)",
            [("alice", "TRAC_ADMIN"), ("developers", "TICKET_MODIFY"), ("bob", "developers")],
        )
        db.execute(
            "INSERT INTO session (sid, authenticated, last_visit) VALUES ('alice', 1, ?)",
            (T0 // 10**6,),
        )
        db.executemany(
            "INSERT INTO session_attribute (sid, authenticated, name, value) "
            "VALUES ('alice', 1, ?, ?)",
            [("name", "Alice Example"), ("email", "alice@example.org")],
        )
    ini.set_text(path / "conf" / "trac.ini", "ticket-custom", CUSTOM_FIELD, "text")


def _tickets(db: sqlite3.Connection) -> None:
    db.execute(
        "INSERT INTO component (name, owner, description) "
        "VALUES ('backend', 'alice', 'Server side')"
    )
    db.execute(
        "INSERT INTO milestone (name, due, completed, description) "
        "VALUES ('release-1.0', ?, 0, 'The first release')",
        (T0 + 86_400_000_000 * 90,),
    )
    for number, kind, summary, reporter, owner, status, customer in TICKETS:
        db.execute(
            "INSERT INTO ticket (id, type, time, changetime, component, severity, priority, "
            "owner, reporter, cc, version, milestone, status, resolution, summary, description, "
            "keywords) VALUES (?, ?, ?, ?, 'backend', '', 'major', ?, ?, '', '', 'release-1.0', "
            "?, ?, ?, ?, '')",
            (
                number,
                kind,
                T0 + number,
                T0 + 1000 + number,
                owner,
                reporter,
                status,
                "fixed" if status == "closed" else "",
                summary,
                f"{summary}, as reported in 2011.",
            ),
        )
        db.execute(
            "INSERT INTO ticket_custom (ticket, name, value) VALUES (?, ?, ?)",
            (number, CUSTOM_FIELD, customer),
        )
        db.execute(
            "INSERT INTO ticket_change (ticket, time, author, field, oldvalue, newvalue) "
            "VALUES (?, ?, ?, 'comment', '1', 'Seen here too.')",
            (number, T0 + 1000 + number, owner),
        )


def _wiki(db: sqlite3.Connection, version: int) -> None:
    for number, text in enumerate(WIKI_TEXTS, 1):
        row = {
            "name": WIKI_PAGE,
            "version": number,
            "time": T0 + number,
            "author": ("alice", "bob")[number - 1],
            "text": text,
            "comment": f"edit {number}",
            "readonly": 0,
        }
        if version <= 41:
            row["ipnr"] = f"192.0.2.{number}"
        _insert(db, "wiki", row)


def _attachment(db: sqlite3.Connection, path: Path, version: int) -> None:
    row = {
        "type": "ticket",
        "id": "1",
        "filename": ATTACHMENT_NAME,
        "size": len(ATTACHMENT_BYTES),
        "time": T0 + 5,
        "description": "How it was built",
        "author": "alice",
    }
    if version <= 41:
        row["ipnr"] = "192.0.2.1"
    _insert(db, "attachment", row)
    if version < 28:
        file = path / "attachments" / "ticket" / "1" / quote(ATTACHMENT_NAME)
    else:
        attachments = str(path / "files" / "attachments")
        file = Path(Attachment._get_path(attachments, "ticket", "1", ATTACHMENT_NAME))
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(ATTACHMENT_BYTES)


def _insert(db: sqlite3.Connection, table: str, row: dict[str, object]) -> None:
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))
