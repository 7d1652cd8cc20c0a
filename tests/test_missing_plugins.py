"""Plugins an old project asks for that this image lacks (issue 20), with real
Trac: an environment made by `trac-admin initenv`, given what environments of
the Python 2 years carry (rules for AccountManager, XML-RPC and TracBzr, a
Python 2 egg and a Python 2 single-file plugin in `plugins/`).

What Trac 1.6 itself does with them (checked below): a rule that matches
nothing is ignored without a word, an egg for Python 2.7 is skipped without a
word (pkg_resources never lists it), a Python 2 `.py` plugin is logged as a
traceback.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from trac.env import Environment
from trac.loader import load_components
from trac.perm import PermissionSystem
from trac.test import MockRequest

from trac_breezy.trac_app.missing_plugins import (
    MissingPluginNotices,
    missing_rules,
    notices,
    python2_plugins,
)

TRAC_ADMIN = str(Path(sys.executable).with_name("trac-admin"))
THIS = "{}.{}".format(*sys.version_info)
OLD_RULES = {
    "acct_mgr.*": "enabled",
    "acct_mgr.admin.AccountManagerAdminPanel": "enabled",
    "tracrpc.*": "enabled",
    "tracbzr.*": "enabled",
    "tracopt.versioncontrol.svn.*": "enabled",  # Trac's own: known
    "trac.ticket.report.ReportModule": "disabled",
    "webadmin.*": "disabled",  # a disabled rule asks for nothing
    "Trac.Wiki.*": "on",  # Trac lower-cases the names
    "tracfoo.*": "0",
}
PY2_PLUGIN = 'from trac.core import *\n\nclass Old(Component):\n    pass\n\nprint "loaded"\n'


def python2_egg(path: Path) -> None:
    """An egg as Python 2.7's `setup.py bdist_egg` laid it out: its name says py2.7."""
    with zipfile.ZipFile(path, "w") as egg:
        egg.writestr("EGG-INFO/PKG-INFO", "Metadata-Version: 1.0\nName: TracFoo\nVersion: 1.0\n")
        egg.writestr("EGG-INFO/entry_points.txt", "[trac.plugins]\ntracfoo = tracfoo\n")
        egg.writestr("EGG-INFO/top_level.txt", "tracfoo\n")
        egg.writestr("tracfoo.py", PY2_PLUGIN)


@pytest.fixture
def old_env(tmp_path: Path) -> Path:
    path = tmp_path / "old"
    subprocess.run(
        [TRAC_ADMIN, str(path), "initenv", "Old", "sqlite:db/trac.db"],
        check=True,
        capture_output=True,
    )
    ini = path / "conf" / "trac.ini"
    rules = "".join(f"{name} = {value}\n" for name, value in OLD_RULES.items())
    ini.write_text(ini.read_text(encoding="utf-8") + "\n[components]\n" + rules, encoding="utf-8")
    python2_egg(path / "plugins" / "TracFoo-1.0-py2.7.egg")
    (path / "plugins" / "old_macro.py").write_text(PY2_PLUGIN, encoding="utf-8")
    (path / "plugins" / "fine_macro.py").write_text("X = 1\n", encoding="utf-8")
    return path


def test_missing_rules_follow_trac_s_matching():
    known = ["trac.wiki.web_ui.WikiModule", "tracopt.versioncontrol.svn.svn_fs.SubversionConnector"]
    assert missing_rules(OLD_RULES, known) == [
        "acct_mgr.*",
        "acct_mgr.admin.AccountManagerAdminPanel",
        "tracrpc.*",
        "tracbzr.*",
    ]
    # A prefix must end at a dot, as Trac walks the name's dotted parents.
    assert missing_rules({"trac.wik.*": "enabled"}, known) == ["trac.wik.*"]
    assert missing_rules({"trac.wiki.web_ui.wikimodule": "yes"}, known) == []


def test_python2_eggs_and_files_are_named_with_why(old_env: Path):
    assert python2_plugins(old_env / "plugins") == [
        ("TracFoo-1.0-py2.7.egg", f"an egg built for Python 2.7, not {THIS}"),
        (
            "old_macro.py",
            f"does not compile under Python {THIS} (line 6: Missing parentheses in call to "
            "'print'. Did you mean print(...)?)",
        ),
    ]
    assert python2_plugins(old_env / "no such folder") == []


def test_trac_itself_is_silent_about_the_egg_and_the_rules_and_logs_a_traceback(old_env: Path):
    """Why the notices exist: what Trac 1.6 says on its own."""
    env = Environment(str(old_env))
    said = io.StringIO()
    handler = logging.StreamHandler(said)
    env.log.addHandler(handler)
    try:
        load_components(env)
    finally:
        env.log.removeHandler(handler)
    log = said.getvalue()
    assert "TracFoo" not in log and "acct_mgr" not in log
    assert "Failed to load plugin from" in log and "Traceback" in log


def test_notices_of_an_opened_environment(old_env: Path, tmp_path: Path):
    shared = tmp_path / "shared-plugins"
    shared.mkdir()
    (shared / "legacy_rpc.py").write_text("print 'x'\n", encoding="utf-8")
    env = Environment(str(old_env))
    env.config.set("inherit", "plugins_dir", str(shared))
    lines = notices(env)  # Trac's configuration keeps option names in lower case
    assert lines[:4] == [
        f"[components] {rule} = enabled: no component of this image matches (a plugin it "
        "does not have); install a Python 3 release of the plugin (docs/plugins.md), or "
        "remove the rule"
        for rule in (
            "acct_mgr.*",
            "acct_mgr.admin.accountmanageradminpanel",
            "tracrpc.*",
            "tracbzr.*",
        )
    ]
    assert lines[4].startswith(
        f"plugins/TracFoo-1.0-py2.7.egg: an egg built for Python 2.7, not {THIS}, so Trac "
        "skips it; install a Python 3 release of the plugin"
    )
    assert lines[5].startswith("plugins/old_macro.py: does not compile under Python")
    assert lines[6].startswith(f"{shared}/legacy_rpc.py: does not compile")
    assert len(lines) == 7


def admin_page(env: Environment, user: str, path: str = "/admin") -> list[str]:
    req = MockRequest(env, path_info=path, authname=user)
    MissingPluginNotices(env).post_process_request(req, "admin_basics.html", {}, {})
    return [str(w) for w in req.chrome["warnings"]]


def test_admin_pages_show_them_to_trac_admins_once(old_env: Path):
    env = Environment(str(old_env))
    env.config.set("components", "trac_breezy.trac_app.missing_plugins.*", "enabled")
    PermissionSystem(env).grant_permission("boss", "TRAC_ADMIN")
    PermissionSystem(env).grant_permission("dev", "TICKET_ADMIN")
    shown = admin_page(env, "boss")
    assert len(shown) == 6 and "acct_mgr.*" in shown[0] and "old_macro.py" in shown[5]
    assert admin_page(env, "boss", "/admin/general/basics") == shown
    assert admin_page(env, "dev") == []
    assert admin_page(env, "boss", "/wiki/WikiStart") == []
    assert admin_page(env, "anonymous") == []
