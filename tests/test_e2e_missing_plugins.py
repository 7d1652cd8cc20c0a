"""An old project mounted as it is, asking for plugins the image lacks (issue 20):
`acct_mgr.* = enabled` in its trac.ini, a Python 2.7 egg and a Python 2
single-file plugin in its `plugins/`. Trac 1.6 ignores the rule and the egg
without a word; the project's admin pages now name them to its TRAC_ADMINs,
with what to do, and the project still serves. Through the real image.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import new_stack
from stack import ADMIN, Stack
from test_missing_plugins import PY2_PLUGIN, TRAC_ADMIN, python2_egg
from trac_web import TracUser, warnings

pytestmark = pytest.mark.e2e
WWW_DATA = 33


def old_project(path: Path) -> None:
    """An environment as an old host kept it: its admin, its rules, its Python 2 plugins."""
    for args in (
        ["initenv", "Old Host", "sqlite:db/trac.db"],
        ["permission", "add", ADMIN[0], "TRAC_ADMIN"],
    ):
        subprocess.run([TRAC_ADMIN, str(path), *args], check=True, capture_output=True)
    ini = path / "conf" / "trac.ini"
    text = ini.read_text(encoding="utf-8")
    ini.write_text(
        text + "\n[components]\nacct_mgr.* = enabled\ntracrpc.* = enabled\n", encoding="utf-8"
    )
    python2_egg(path / "plugins" / "TracFoo-1.0-py2.7.egg")
    (path / "plugins" / "old_macro.py").write_text(PY2_PLUGIN, encoding="utf-8")


@pytest.fixture(scope="module")
def old_host(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    trac_dir = tmp_path_factory.mktemp("trac")
    old_project(trac_dir / "oldhost")
    for directory, subdirs, files in os.walk(trac_dir):
        for name in [directory, *(os.path.join(directory, n) for n in subdirs + files)]:
            os.lchown(name, WWW_DATA, WWW_DATA)
    stack = new_stack(
        image,
        "missingplugins",
        ADMIN_USER=ADMIN[0],
        ADMIN_PASSWORD=ADMIN[1],
        TRAC_DATA=str(trac_dir),
    )
    try:
        stack.up()
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)


def test_the_admin_page_names_what_the_image_lacks(old_host: Stack):
    admin = TracUser(old_host.url("/trac/oldhost"))
    admin.login(*ADMIN)
    status, page = admin.open("/admin")
    assert status == 200, page[-2000:]
    shown = " ".join(warnings(page))  # Trac lists several warnings in one box
    for notice in (
        "[components] acct_mgr.* = enabled: no component of this image matches",
        "[components] tracrpc.* = enabled: no component of this image matches",
        "plugins/TracFoo-1.0-py2.7.egg: an egg built for Python 2.7, not 3.",
        "plugins/old_macro.py: does not compile under Python 3.",
    ):
        assert shown.count(notice) == 1, (notice, shown)
    assert shown.count("install a Python 3 release of the plugin (docs/plugins.md)") == 4, shown
    # Once a page, on every admin page; not on the project's other pages.
    status, panel = admin.open("/admin/general/basics")
    assert status == 200 and " ".join(warnings(panel)) == shown
    status, wiki = admin.open("/wiki/WikiStart")
    assert status == 200 and warnings(wiki) == []


def test_the_project_still_serves_and_anonymous_sees_no_notice(old_host: Stack):
    status, _, page = old_host.get("/trac/oldhost/wiki/WikiStart")
    assert status == 200 and "acct_mgr" not in page and "TracFoo" not in page
    status, _, page = old_host.get("/trac/oldhost/admin")
    assert status in (403, 404) and "acct_mgr" not in page and "TracFoo" not in page
