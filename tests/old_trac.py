"""Trac environments as an older Trac left them, for the upgrade tests.

Trac 1.6 only runs on Python 3 and older Tracs only on Python 2, so an
environment from Trac 1.2 cannot be made here. What each upgrade did is known
exactly, though: Trac 1.6's own `trac/upgrades/dbNN.py`. This makes a fresh
Trac 1.6 environment and undoes those scripts one by one, newest first, down
to the wanted database version: 43 (a Trac 1.3 development release), 41 (Trac
1.2), 29 (Trac 1.0) or 26 (Trac 0.12). Each `_undo_NN` names what `dbNN.py`
did. Old table definitions are those of `trac/db_default.py` at the tags
trac-1.2.6, trac-1.0.20 and trac-0.12.7 of https://github.com/edgewall/trac;
trac.ini defaults that changed with no upgrade script are in `old_trac_ini`.
The defects old hosts left (missing log/, repeated options, TracBzr, Python 2
plugins...) are in `old_trac_defects`, re-exported here.
"""

from __future__ import annotations

import configparser
import hashlib
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import old_trac_ini as ini
from old_trac_data import add_old_data
from old_trac_defects import (
    add_python2_egg,
    add_python2_py_plugin,
    enable_missing_plugins,
    log_to_missing_file,
    make_tracbzr,
    repeat_option,
    repeat_section,
    windows_paths,
)
from trac.db.schema import Column, Index, Table
from trac.db.sqlite_backend import _to_sql

OLD_VERSION = 43
OLD_VERSIONS = (26, 29, 41, 43)
RELEASES = {26: "0.12", 29: "1.0", 41: "1.2", 43: "1.3"}
TRAC_ADMIN = str(Path(sys.executable).with_name("trac-admin"))

__all__ = [
    "OLD_VERSION",
    "OLD_VERSIONS",
    "add_failing_plugin",
    "add_old_data",
    "add_python2_egg",
    "add_python2_py_plugin",
    "database_version",
    "enable_missing_plugins",
    "log_to_missing_file",
    "make_old_environment",
    "make_tracbzr",
    "repeat_option",
    "repeat_section",
    "windows_paths",
]

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

# Wiki pages under trac/wiki/default-pages/ at trac-1.6 that trac-0.12.7 did
# not ship (1.0.20 and 1.2.6 ship the same names as 1.6).
PAGES_NEWER_THAN = {26: ("TicketQuery", "TracBatchModify", "TracChangeLog")}

# Tables as the old trac/db_default.py declared them (same in 0.12.7, 1.0.20
# and 1.2.6 unless said).
OLD_ENUM = Table("enum", key=("type", "name"))[Column("type"), Column("name"), Column("value")]
OLD_ATTACHMENT = Table("attachment", key=("type", "id", "filename"))[
    Column("type"),
    Column("id"),
    Column("filename"),
    Column("size", type="int"),
    Column("time", type="int64"),
    Column("description"),
    Column("author"),
    Column("ipnr"),
]
OLD_WIKI = Table("wiki", key=("name", "version"))[
    Column("name"),
    Column("version", type="int"),
    Column("time", type="int64"),
    Column("author"),
    Column("ipnr"),
    Column("text"),
    Column("comment"),
    Column("readonly", type="int"),
    Index(["time"]),
]
# 1.0.20 and 0.12.7 (db38 gave it an id in 1.2).
OLD_NODE_CHANGE = Table("node_change", key=("repos", "rev", "path", "change_type"))[
    Column("repos", type="int"),
    Column("rev", key_size=20),
    Column("path", key_size=255),
    Column("node_type", size=1),
    Column("change_type", size=1, key_size=2),
    Column("base_path"),
    Column("base_rev"),
    Index(["repos", "rev"]),
]
# 0.12.7 (db27 gave it an integer id and a key column in 1.0).
OLD_CACHE = Table("cache", key="id")[Column("id"), Column("generation", type="int")]

Config = configparser.RawConfigParser
Undo = Callable[[sqlite3.Connection, Config, Path], None]


def make_old_environment(
    path: Path, title: str = "Old Project", version: int = OLD_VERSION, data: bool = True
) -> None:
    """An environment at database `version` (one of OLD_VERSIONS), SQLite db/trac.db.

    With `data`, old rows too (tickets, wiki versions, an attachment...: see
    `old_trac_data`), written in the old schema.
    """
    if version not in OLD_VERSIONS:
        raise ValueError(f"version {version} is not one of {OLD_VERSIONS}")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [TRAC_ADMIN, str(path), "initenv", title, "sqlite:db/trac.db"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [TRAC_ADMIN, str(path), "wiki", "remove", "TracUpgrade"], check=True, capture_output=True
    )
    conf = path / "conf" / "trac.ini"
    config = ini.read(conf)
    with sqlite3.connect(path / "db" / "trac.db") as db:
        for step in range(45, version, -1):
            UNDO[step](db, config, path)
        for page in PAGES_NEWER_THAN.get(version, ()):
            db.execute("DELETE FROM wiki WHERE name = ?", (page,))
        db.execute(
            "UPDATE system SET value = ? "
            "WHERE name IN ('database_version', 'initial_database_version')",
            (str(version),),
        )
    if version < OLD_VERSION:
        ini.apply_release_defaults(config, version)
        _old_layout(path, version)
    ini.write(conf, config)
    if data:
        add_old_data(path)


def _old_layout(path: Path, version: int) -> None:
    """Files `Environment.create` of 0.12/1.0/1.2 made differently.

    They made no templates/ folder (trac/env.py `create`; 1.6 puts sample
    Jinja2 templates there), and 0.12's README pointed at
    http://trac.edgewall.org/.
    """
    shutil.rmtree(path / "templates", ignore_errors=True)
    if version <= 26:
        readme = path / "README"
        readme.write_text(
            readme.read_text().replace("https://trac.edgewall.org/", "http://trac.edgewall.org/")
        )


def _rebuild(db: sqlite3.Connection, table: Table) -> None:
    """Make `table` as the old definition says, keeping the rows' common columns.

    What Trac's own SQLite `drop_column`/`upgrade_tables` do: a new table,
    the rows copied, the old one dropped.
    """
    name = table.name
    have = [row[1] for row in db.execute(f"PRAGMA table_info({name})")]
    keep = ",".join(c.name for c in table.columns if c.name in have)
    indexes = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (name,),
    ).fetchall()
    for (index,) in indexes:
        db.execute(f"DROP INDEX {index}")
    db.execute(f"ALTER TABLE {name} RENAME TO {name}_undo")
    for statement in _to_sql(table):
        db.execute(statement)
    db.execute(f"INSERT INTO {name} ({keep}) SELECT {keep} FROM {name}_undo")
    db.execute(f"DROP TABLE {name}_undo")


def _undo_45(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db45: `$var` -> `${var}` in [notification] *_subject_template (Jinja2)."""
    for name in ("ticket_subject_template", "batch_subject_template"):
        if config.has_option("notification", name):
            value = config.get("notification", name)
            config.set("notification", name, re.sub(r"\$\{([\w.]+)\}", r"$\1", value))


def _undo_44(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db44: `enum.description` added; reports' `description AS _description` -> `t.`."""
    _rebuild(db, OLD_ENUM)
    db.execute(
        "UPDATE report SET query = replace(query, 't.description AS _description', "
        "'description AS _description')"
    )


def _undo_43(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db43: the default permission_policies gained DefaultWikiPolicy, DefaultTicketPolicy."""
    config.set(
        "trac",
        "permission_policies",
        "ReadonlyWikiPolicy,DefaultPermissionPolicy,LegacyAttachmentPolicy",
    )


def _undo_42(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db42: `ipnr` dropped from `attachment` and `wiki`."""
    _rebuild(db, OLD_ATTACHMENT)
    _rebuild(db, OLD_WIKI)


def _undo_41(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db41: [trac] mainnav/metanav lists -> [mainnav]/[metanav] `<name>.order`."""
    config.remove_section("mainnav")
    config.remove_section("metanav")
    config.set("trac", "mainnav", ini.MAINNAV)
    config.set("trac", "metanav", ini.METANAV)


def _undo_40(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db40: [notification] always_notify_* -> [notification-subscriber] (defaults)."""
    config.remove_section("notification-subscriber")
    config.set("notification", "always_notify_owner", "false")
    config.set("notification", "always_notify_reporter", "false")
    config.set("notification", "always_notify_updater", "true")


def _undo_39(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db39: [trac] authz_file, authz_module_name -> [svn]; repository_type ->
    [versioncontrol] default_repository_type."""
    for name in ("authz_file", "authz_module_name"):
        ini.put(config, "trac", name, config.get("svn", name, fallback=""))
        ini.put(config, "svn", name, None)
    kind = config.get("versioncontrol", "default_repository_type", fallback="svn")
    ini.put(config, "trac", "repository_type", kind)
    ini.put(config, "versioncontrol", "default_repository_type", None)


def _undo_38(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db38: `node_change` got an auto-increment id and (repos, rev, path) indexes."""
    _rebuild(db, OLD_NODE_CHANGE)


def _undo_35(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db35: the `notify_watch` table added."""
    db.execute("DROP TABLE notify_watch")


def _undo_34(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db34: the `notify_subscription` table added."""
    db.execute("DROP TABLE notify_subscription")


def _undo_33(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db33: `create` and `create_and_assign` actions added to [ticket-workflow]."""
    for name in list(config.options("ticket-workflow")):
        if name.split(".")[0] in ("create", "create_and_assign"):
            config.remove_option("ticket-workflow", name)


def _undo_32(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db32: [trac] repository_sync_per_request (default `(default)`) removed in
    favour of [repositories] `<name>.sync_per_request` (none in a new env)."""
    config.set("trac", "repository_sync_per_request", "(default)")


def _undo_31(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db31: [trac] repository_dir -> [repositories] .dir."""
    ini.put(config, "trac", "repository_dir", config.get("repositories", ".dir", fallback=""))
    ini.put(config, "repositories", ".dir", None)


def _undo_30(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db30: ReadonlyWikiPolicy prepended to the default permission_policies."""
    config.set("trac", "permission_policies", "DefaultPermissionPolicy, LegacyAttachmentPolicy")


def _undo_28(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db28: attachments/ -> files/attachments/ with hashed names. A new
    environment has none to move back; `old_trac_data` puts its file where
    the version's Trac kept it."""


def _undo_27(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db27: `cache` dropped and made again with an integer id and a `key` column."""
    db.execute("DROP TABLE cache")
    for statement in _to_sql(OLD_CACHE):
        db.execute(statement)


def _no_trace(db: sqlite3.Connection, config: Config, path: Path) -> None:
    """db29 (svn components moved to tracopt: enabled only if the old ones
    were named in [components], which a new env does not), db36 (a relative
    [authz_policy] authz_file: empty here) and db37 (MySQL only) leave
    nothing in a new SQLite environment."""


UNDO: dict[int, Undo] = {
    45: _undo_45,
    44: _undo_44,
    43: _undo_43,
    42: _undo_42,
    41: _undo_41,
    40: _undo_40,
    39: _undo_39,
    38: _undo_38,
    37: _no_trace,
    36: _no_trace,
    35: _undo_35,
    34: _undo_34,
    33: _undo_33,
    32: _undo_32,
    31: _undo_31,
    30: _undo_30,
    29: _no_trace,
    28: _undo_28,
    27: _undo_27,
}


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
