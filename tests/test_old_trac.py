"""The old environments of old_trac.py are what old Tracs left, and Trac 1.6 upgrades them.

Unit-level: the real Trac 1.6 of the test venv (`trac-admin`, `Environment`),
no image.
"""

from __future__ import annotations

import configparser
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import pytest
from old_trac import (
    OLD_VERSIONS,
    TRAC_ADMIN,
    add_python2_egg,
    add_python2_py_plugin,
    database_version,
    enable_missing_plugins,
    log_to_missing_file,
    make_old_environment,
    make_tracbzr,
    repeat_option,
    repeat_section,
    windows_paths,
)
from old_trac_data import ATTACHMENT_BYTES, ATTACHMENT_NAME, TICKETS, WIKI_PAGE, WIKI_TEXTS
from trac.attachment import Attachment
from trac.env import Environment
from trac.ticket.model import Ticket
from trac.wiki.model import WikiPage

# Tables and columns, in order, as `schema` in trac/db_default.py declares
# them at the tag trac-1.0.20 of https://github.com/edgewall/trac (db_version
# = 29). 1.2.6 (41) adds notify_subscription, notify_watch (db34, db35) and
# node_change.id (db38).
SCHEMA_1_0 = {
    "system": ["name", "value"],
    "permission": ["username", "action"],
    "auth_cookie": ["cookie", "name", "ipnr", "time"],
    "session": ["sid", "authenticated", "last_visit"],
    "session_attribute": ["sid", "authenticated", "name", "value"],
    "cache": ["id", "generation", "key"],
    "attachment": ["type", "id", "filename", "size", "time", "description", "author", "ipnr"],
    "wiki": ["name", "version", "time", "author", "ipnr", "text", "comment", "readonly"],
    "repository": ["id", "name", "value"],
    "revision": ["repos", "rev", "time", "author", "message"],
    "node_change": ["repos", "rev", "path", "node_type", "change_type", "base_path", "base_rev"],
    "ticket": [
        "id",
        "type",
        "time",
        "changetime",
        "component",
        "severity",
        "priority",
        "owner",
        "reporter",
        "cc",
        "version",
        "milestone",
        "status",
        "resolution",
        "summary",
        "description",
        "keywords",
    ],
    "ticket_change": ["ticket", "time", "author", "field", "oldvalue", "newvalue"],
    "ticket_custom": ["ticket", "name", "value"],
    "enum": ["type", "name", "value"],
    "component": ["name", "owner", "description"],
    "milestone": ["name", "due", "completed", "description"],
    "version": ["name", "time", "description"],
    "report": ["id", "author", "title", "query", "description"],
}
# trac/db_default.py at trac-0.12.7 (db_version = 26): as 1.0.20 but `cache`
# had no `key` column (db27).
SCHEMA_0_12 = {**SCHEMA_1_0, "cache": ["id", "generation"]}
# trac/db_default.py at trac-1.2.6 (db_version = 41).
SCHEMA_1_2 = {
    **SCHEMA_1_0,
    "node_change": ["id", *SCHEMA_1_0["node_change"]],
    "notify_subscription": [
        "id",
        "time",
        "changetime",
        "class",
        "sid",
        "authenticated",
        "distributor",
        "format",
        "priority",
        "adverb",
    ],
    "notify_watch": ["id", "sid", "authenticated", "class", "realm", "target"],
}
# Keys of the old tables whose key a step changed (same sources).
OLD_KEYS = {29: {"node_change": ["repos", "rev", "path", "change_type"]}, 26: {"cache": ["id"]}}
UPGRADED = (26, 29, 41)


def schema(env: Path) -> dict[str, list[str]]:
    with sqlite3.connect(env / "db" / "trac.db") as db:
        names = [
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            name: [row[1] for row in db.execute(f"PRAGMA table_info({name})")] for name in names
        }


def table_key(env: Path, table: str) -> list[str]:
    """The columns of the key Trac's SQLite backend made (PRIMARY KEY or UNIQUE)."""
    with sqlite3.connect(env / "db" / "trac.db") as db:
        for _seq, name, _unique, origin, _partial in db.execute(f"PRAGMA index_list({table})"):
            if origin in ("pk", "u"):
                return [row[2] for row in db.execute(f"PRAGMA index_info({name})")]
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})") if row[5]]


def ini(env: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(env / "conf" / "trac.ini", encoding="utf-8")
    return parser


def admin(env: Path, *args: str) -> None:
    done = subprocess.run([TRAC_ADMIN, str(env), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("version", "expected"), [(26, SCHEMA_0_12), (29, SCHEMA_1_0), (41, SCHEMA_1_2)]
)
def test_the_schema_is_the_old_trac_s(tmp_path, version, expected):
    env = tmp_path / "old"
    make_old_environment(env, version=version)
    assert schema(env) == expected
    for table, key in OLD_KEYS.get(version, {}).items():
        assert table_key(env, table) == key
    assert database_version(env) == version


@pytest.mark.parametrize("version", [26, 29])
def test_trac_ini_has_the_old_trac_s_sections_and_names(tmp_path, version):
    env = tmp_path / "old"
    make_old_environment(env, version=version)
    config = ini(env)
    # Written by 0.12/1.0's `initenv` (trac/versioncontrol/api.py, svn_authz.py,
    # trac/web/chrome.py, trac/ticket/notification.py, trac/env.py).
    assert config.get("trac", "repository_dir") == ""
    assert config.get("trac", "repository_type") == "svn"
    assert config.get("trac", "repository_sync_per_request") == "(default)"
    assert config.has_option("trac", "authz_file") and config.has_option("trac", "mainnav")
    assert config.get("notification", "always_notify_updater") == "true"
    assert config.get("logging", "log_type") == "none"
    assert config.get("header_logo", "height") == "-1"
    assert config.get("notification", "ticket_subject_template") == "$prefix #$ticket.id: $summary"
    assert config.get("trac", "permission_policies") == (
        "DefaultPermissionPolicy, LegacyAttachmentPolicy"
    )
    for section in ("mainnav", "metanav", "notification-subscriber", "repositories"):
        assert not config.has_section(section)
    assert not config.has_option("versioncontrol", "default_repository_type")
    assert not any(name.startswith("create") for name in config.options("ticket-workflow"))
    assert config.has_option("svn", "branches") == (version == 26)
    assert config.has_option("trac", "jquery_location") == (version == 29)
    assert not (env / "templates").exists()


@pytest.mark.parametrize("version", UPGRADED)
def test_trac_1_6_upgrades_it_and_keeps_the_rows(tmp_path, version):
    env = tmp_path / "old"
    make_old_environment(env, version=version)
    make_tracbzr(env, "/srv/bzr/proj")
    assert Environment(str(env)).needs_upgrade()

    admin(env, "upgrade")
    admin(env, "wiki", "upgrade")

    assert database_version(env) == 45
    trac = Environment(str(env))
    assert not trac.needs_upgrade()
    for number, _kind, summary, *_rest, customer in TICKETS:
        ticket = Ticket(trac, number)
        assert (ticket["summary"], ticket["customer"]) == (summary, customer)
    assert WikiPage(trac, WIKI_PAGE).text == WIKI_TEXTS[-1]
    assert WikiPage(trac, WIKI_PAGE, 1).text == WIKI_TEXTS[0]
    with Attachment(trac, "ticket", 1, ATTACHMENT_NAME).open() as file:
        assert file.read() == ATTACHMENT_BYTES
    assert not (env / "attachments").exists()  # db28 moved 0.12's folder
    config = ini(env)
    assert config.get("repositories", ".dir") == "/srv/bzr/proj"
    if version <= 30:  # [trac] repository_type -> [versioncontrol] (db39)
        assert config.get("versioncontrol", "default_repository_type") == "bzr"
    else:
        assert config.get("repositories", ".type") == "bzr"
    assert not config.has_option("trac", "repository_dir")
    assert not config.has_option("trac", "repository_type")


def test_every_old_version_is_made(tmp_path):
    for version in OLD_VERSIONS:
        make_old_environment(tmp_path / str(version), version=version, data=False)
        assert database_version(tmp_path / str(version)) == version
    with pytest.raises(ValueError, match="version 30"):
        make_old_environment(tmp_path / "30", version=30)


@pytest.fixture
def old_env(tmp_path) -> Path:
    env = tmp_path / "old"
    make_old_environment(env, version=29, data=False)
    return env


def test_a_repeated_option_stops_trac_1_6_as_python_3_refuses_it(old_env):
    repeat_option(old_env)
    with pytest.raises(configparser.DuplicateOptionError, match="option 'height' in section"):
        Environment(str(old_env))
    text = (old_env / "conf" / "trac.ini").read_text()
    assert text.count("height = -1\n") == 1 and text.count("height = 50\n") == 1


def test_a_repeated_section_stops_trac_1_6(old_env):
    repeat_section(old_env)
    with pytest.raises(configparser.DuplicateSectionError, match="'components' already exists"):
        Environment(str(old_env))


def test_a_log_file_without_its_folder_stops_trac_1_6(old_env):
    log_to_missing_file(old_env)
    with pytest.raises(FileNotFoundError, match=r"log/trac\.log"):
        Environment(str(old_env))


def test_the_python_2_egg_is_a_bdist_egg_trac_1_6_skips(old_env):
    egg = add_python2_egg(old_env)
    assert egg.name == "TracFoo-1.0-py2.7.egg" and egg.parent == old_env / "plugins"
    with zipfile.ZipFile(egg) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
        entry_points = archive.read("EGG-INFO/entry_points.txt").decode()
        source = archive.read("tracfoo/web_ui.py").decode()
    assert {"EGG-INFO/PKG-INFO", "EGG-INFO/top_level.txt", "EGG-INFO/SOURCES.txt"} <= names
    assert entry_points.startswith("[trac.plugins]\n")
    with pytest.raises(SyntaxError):
        compile(source, "web_ui.py", "exec")
    trac = Environment(str(old_env))  # pkg_resources leaves out a py2.7 egg
    assert not trac.is_component_enabled("tracfoo.web_ui.FooModule")


def test_the_python_2_single_file_plugin_is_python_2(old_env):
    plugin = add_python2_py_plugin(old_env)
    assert plugin.parent == old_env / "plugins"
    with pytest.raises(SyntaxError):
        compile(plugin.read_text(), plugin.name, "exec")


def test_missing_plugins_are_enabled_as_old_hosts_did(old_env):
    enable_missing_plugins(old_env)
    config = ini(old_env)
    assert config.get("components", "acct_mgr.htfile.HtPasswdStore") == "enabled"
    assert config.get("components", "trac.web.auth.LoginModule") == "disabled"
    assert config.get("components", "tracrpc.*") == "enabled"
    assert config.get("account-manager", "password_store") == "HtPasswdStore"
    Environment(str(old_env))  # Trac opens it; the components are just absent


def test_tracbzr_settings_are_its_readme_s(tmp_path):
    for version in (29, 41):
        env = tmp_path / str(version)
        make_old_environment(env, version=version, data=False)
        make_tracbzr(env, "/srv/bzr")
        config = ini(env)
        assert config.get("components", "tracbzr.*") == "enabled"
        section, prefix = ("trac", "repository_") if version == 29 else ("repositories", ".")
        assert config.get(section, prefix + "dir") == "/srv/bzr"
        assert config.get(section, prefix + "type") == "bzr"


def test_windows_paths_are_written_with_backslashes(old_env):
    windows_paths(old_env)
    config = ini(old_env)
    assert config.get("trac", "repository_dir") == r"C:\repos\proj"
    assert config.get("trac", "repository_type") == "git"
    assert config.get("logging", "log_file") == r"C:\trac\proj\log\trac.log"
    assert config.get("inherit", "templates_dir") == r"C:\trac\templates"
