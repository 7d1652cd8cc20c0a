"""What real old hosts left in a Trac environment besides Trac's own files.

Each function makes one defect the way it arises: by editing trac.ini's text
as a person with an editor (or a plugin's install notes) did, so that files
Python 3's ConfigParser refuses can be made at all, and by writing plugin
files as Python 2 tools wrote them. Where a fact comes from is said at each.
"""

from __future__ import annotations

import shutil
import sqlite3
import zipfile
from pathlib import Path

import old_trac_ini as ini

PY2_MODULE = """\
# -*- coding: utf-8 -*-
from trac.core import Component, implements
from trac.web.chrome import INavigationContributor


class FooModule(Component):
    implements(INavigationContributor)

    def get_active_navigation_item(self, req):
        return 'foo'

    def get_navigation_items(self, req):
        try:
            yield 'mainnav', 'foo', u'Foo'
        except Exception, e:
            print "foo failed: %s" % e
"""

PY2_SINGLE_FILE = '''\
# A single-file macro as Trac 0.11-1.4 plugins/ held them (WikiMacroBase).
from trac.wiki.macros import WikiMacroBase


class HelloMacro(WikiMacroBase):
    """Says hello."""

    def expand_macro(self, formatter, name, content):
        print "expanding", name
        return u"Hello, %s" % content
'''


def _ini(path: Path) -> Path:
    return path / "conf" / "trac.ini"


def _version(path: Path) -> int:
    with sqlite3.connect(path / "db" / "trac.db") as db:
        (value,) = db.execute("SELECT value FROM system WHERE name = 'database_version'").fetchone()
    return int(value)


def log_to_missing_file(path: Path) -> None:
    """`[logging] log_type = file`, `log_file = trac.log`, and no log/ folder.

    Trac resolves a relative log_file against the environment's log/ folder
    (trac/env.py `setup_log`) and does not make the folder; hosts' backups
    rarely carry it.
    """
    ini.set_text(_ini(path), "logging", "log_type", "file")
    ini.set_text(_ini(path), "logging", "log_file", "trac.log")
    shutil.rmtree(path / "log", ignore_errors=True)


def repeat_option(
    path: Path,
    section: str = "header_logo",
    option: str = "height",
    values: tuple[str, ...] = ("-1", "50"),
) -> None:
    """The same option written once per value in one section.

    Python 2's ConfigParser kept the last; Python 3's (strict by default, as
    Trac 1.6's UnicodeConfigParser is) raises DuplicateOptionError.
    """
    ini.remove_option_lines(_ini(path), section, option)
    ini.add_lines(_ini(path), section, [f"{option} = {value}\n" for value in values])


def repeat_section(
    path: Path,
    section: str = "components",
    first: tuple[str, str] = ("tracopt.ticket.commit_updater.*", "enabled"),
    second: tuple[str, str] = ("tracrpc.*", "enabled"),
) -> None:
    """`[section]` twice, each with its own option: a plugin's install notes
    pasted at the end of the file. Python 2 merged them; Python 3 raises
    DuplicateSectionError."""
    ini.add_lines(_ini(path), section, [f"{first[0]} = {first[1]}\n"])
    text = _ini(path).read_text(encoding="utf-8").rstrip("\n")
    _ini(path).write_text(f"{text}\n\n[{section}]\n{second[0]} = {second[1]}\n", encoding="utf-8")


def make_tracbzr(path: Path, repository_dir: str) -> None:
    """What TracBzr's README told people to write.

    The README of trac-bzr 0.2+bzr31 (Debian's and Ubuntu's trac-bzr source,
    2007-2010): `components` "should include tracbzr.* = enabled",
    `repository_dir` "should point at the directory containing your
    branches", `repository_type` "should be bzr" (or `bzr+debug`). It names
    no section of its own. A public provisioning script of the Trac 0.11 era
    (found with the code search; its trac.ini here-document) wrote the same
    three under [trac] and [components], with TracBzr-0.2-py2.6.egg in
    plugins/. Up to database version 30 the default repository
    was `[trac] repository_dir`/`repository_type`; from 31 (db31, db39) it
    is `[repositories] .dir`/`.type`, which Trac has read since 0.12.
    """
    conf = _ini(path)
    ini.set_text(conf, "components", "tracbzr.*", "enabled")
    if _version(path) <= 30:
        ini.set_text(conf, "trac", "repository_dir", repository_dir)
        ini.set_text(conf, "trac", "repository_type", "bzr")
    else:
        ini.set_text(conf, "repositories", ".dir", repository_dir)
        ini.set_text(conf, "repositories", ".type", "bzr")


def add_python2_egg(path: Path, name: str = "TracFoo") -> Path:
    """`plugins/<name>-1.0-py2.7.egg`, laid out as setuptools' bdist_egg made
    it on Python 2.7: the package, and EGG-INFO with PKG-INFO (Metadata 1.0,
    UNKNOWN for what setup() left out), SOURCES.txt, entry_points.txt with
    `[trac.plugins]`, top_level.txt, dependency_links.txt and zip-safe.

    bdist_egg also put Python 2.7 .pyc files beside the sources; they cannot
    be made without Python 2, so this egg carries sources only (as eggs made
    with `--exclude-source-files` did the other way round).
    """
    package = name.lower()
    egg = path / "plugins" / f"{name}-1.0-py2.7.egg"
    egg.parent.mkdir(parents=True, exist_ok=True)
    files = {
        "EGG-INFO/PKG-INFO": (
            f"Metadata-Version: 1.0\nName: {name}\nVersion: 1.0\nSummary: A Trac plugin\n"
            "Home-page: UNKNOWN\nAuthor: UNKNOWN\nAuthor-email: UNKNOWN\nLicense: BSD\n"
            "Description: UNKNOWN\nPlatform: UNKNOWN\n"
        ),
        "EGG-INFO/SOURCES.txt": (
            f"setup.py\n{name}.egg-info/PKG-INFO\n{name}.egg-info/SOURCES.txt\n"
            f"{name}.egg-info/dependency_links.txt\n{name}.egg-info/entry_points.txt\n"
            f"{name}.egg-info/top_level.txt\n{name}.egg-info/zip-safe\n"
            f"{package}/__init__.py\n{package}/web_ui.py\n"
        ),
        "EGG-INFO/dependency_links.txt": "\n",
        "EGG-INFO/entry_points.txt": f"[trac.plugins]\n{package}.web_ui = {package}.web_ui\n\n",
        "EGG-INFO/top_level.txt": f"{package}\n",
        "EGG-INFO/zip-safe": "\n",
        f"{package}/__init__.py": "",
        f"{package}/web_ui.py": PY2_MODULE,
    }
    with zipfile.ZipFile(egg, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return egg


def add_python2_py_plugin(path: Path, name: str = "hello_macro") -> Path:
    """A single-file plugin in plugins/ (Trac loads every *.py there) with
    Python 2 syntax."""
    plugin = path / "plugins" / f"{name}.py"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    plugin.write_text(PY2_SINGLE_FILE, encoding="utf-8")
    return plugin


def enable_missing_plugins(path: Path) -> None:
    """TracAccountManager as hosts enabled it with an htpasswd file, and XML-RPC.

    The components and [account-manager] options are those of
    AccountManager's install notes (trac-hacks AccountManagerPlugin:
    `acct_mgr.htfile.HtPasswdStore`, `password_store`, `password_file`, Trac's
    own LoginModule disabled); `tracrpc.*` is XmlRpcPlugin's.
    """
    conf = _ini(path)
    for component, state in (
        ("acct_mgr.admin.*", "enabled"),
        ("acct_mgr.api.*", "enabled"),
        ("acct_mgr.htfile.HtPasswdStore", "enabled"),
        ("acct_mgr.web_ui.LoginModule", "enabled"),
        ("trac.web.auth.LoginModule", "disabled"),
        ("tracrpc.*", "enabled"),
    ):
        ini.set_text(conf, "components", component, state)
    ini.set_text(conf, "account-manager", "password_store", "HtPasswdStore")
    ini.set_text(conf, "account-manager", "password_file", "/var/trac/.htpasswd")


def windows_paths(path: Path, project: str = "proj") -> None:
    """What an environment from a Windows host carries: drive letters and
    backslashes in the repository, the log file and [inherit].

    A git repository: `[trac] repository_dir`/`repository_type` up to
    version 30 with 1.0's tracopt git connector enabled, `[repositories]
    <name>.dir`/`.type` after.
    """
    conf = _ini(path)
    repository = rf"C:\repos\{project}"
    ini.set_text(conf, "components", "tracopt.versioncontrol.git.*", "enabled")
    if _version(path) <= 30:
        ini.set_text(conf, "trac", "repository_dir", repository)
        ini.set_text(conf, "trac", "repository_type", "git")
    else:
        ini.set_text(conf, "repositories", f"{project}.dir", repository)
        ini.set_text(conf, "repositories", f"{project}.type", "git")
    ini.set_text(conf, "logging", "log_type", "file")
    ini.set_text(conf, "logging", "log_file", rf"C:\trac\{project}\log\trac.log")
    ini.set_text(conf, "inherit", "file", r"C:\trac\conf\trac.ini")
    ini.set_text(conf, "inherit", "templates_dir", r"C:\trac\templates")
