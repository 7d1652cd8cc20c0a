"""An old host moves in (issue 20), end to end through the real image.

What a team of the Python 2 years mounts, made the honest way (old_trac.py
undoes Trac's own upgrade scripts; the branch is made by `brz init
--format=pack-0.92`; the users file by Apache's `htpasswd -m`): a Trac 1.0
from Windows that logs to a log/ never copied, with a git repository and
AccountManager; a Trac 1.0 with a repeated option; a Trac 1.2 with XML-RPC and
a repeated section; a Trac 0.12 served by TracBzr with a Python 2 egg; and one
project whose trac.ini no Trac could read. The dry run says it all first and
writes nothing; the container then serves every project it can, lists the
broken one on the front page with its reason, shows the TracBzr project's
branch, and the old user logs in and commits.
"""

from __future__ import annotations

import re

import pytest
from browser import chromium, dom, screenshot
from conftest import new_stack
from old_host import OLD_USER, old_host
from old_trac import database_version, tree_digest
from stack import Brz, run, write_credentials
from trac_web import TracUser

pytestmark = pytest.mark.e2e


def test_an_old_host_moves_in(image, tmp_path):
    trac_dir, bzr_dir = old_host(image, tmp_path)
    volumes = ["-v", f"{trac_dir}:/var/lib/trac", "-v", f"{bzr_dir}:/srv/bzr"]
    before = tree_digest(tmp_path)
    users = ["-e", "HTPASSWD_PATH=/var/lib/trac/.htpasswd"]

    check = run(
        ["docker", "run", "--rm", *users, *volumes, image, "trac-breezy-migrate", "--check"],
        timeout=300,
    ).stdout

    assert tree_digest(tmp_path) == before  # the dry run wrote nothing
    assert "project arduino: repair: log/ is missing: made empty" in check
    assert (
        "project arduino: skip: repository (default) is at C:\\repos\\proj, a Windows path" in check
    )
    assert "project svn: repair: conf/trac.ini: [header_logo] height set twice" in check
    assert "project rpc: repair: conf/trac.ini: [components] written twice, merged" in check
    assert "project tracbzr: repair: conf/trac.ini: TracBzr's tracbzr.*" in check
    assert "project tracbzr: upgrade: database version 26, Trac 1.6 needs 45" in check
    assert "project garbled: refuse: conf/trac.ini: " in check
    assert "tree: ok: format pack-0.92: 1 branch (/srv/bzr/arduino/trunk)" in check
    assert "users file: ok: 1 user: 1 apr1" in check
    assert "nothing was written" in check

    stack = new_stack(
        image,
        "oldhost",
        TRAC_DATA=str(trac_dir),
        BZR_DATA=str(bzr_dir),
        HTPASSWD_PATH="/var/lib/trac/.htpasswd",
    )
    brz = Brz(tmp_path / "home")
    try:
        stack.up()
        status, _, front = stack.get("/trac/")
        assert status == 200
        for title in ("Projetos Arduíno", "Old Subversion", "With XML-RPC", "Served by TracBzr"):
            assert title in front, title
        errors = re.findall(r'<p class="error">(.*?)</p>', front, re.S)
        assert any("conf/trac.ini: line" in e for e in errors), (errors, front[-3000:])
        assert "fix it by hand and restart" in front
        # As a visitor sees it: the broken project among the others, its reason under its name.
        browser = chromium()
        seen = dom(browser, stack.url("/trac/"), tmp_path / "profile")
        assert "This project cannot be opened: conf/trac.ini: line" in seen
        assert seen.index(">garbled<") < seen.index("This project cannot be opened")
        screenshot(browser, stack.url("/trac/"), tmp_path / "front.png")
        for name in ("arduino", "svn", "rpc", "tracbzr"):
            assert database_version(trac_dir / name) == 45, name
            status, _, page = stack.get(f"/trac/{name}/wiki/WikiStart")
            assert status == 200, (name, page[-500:])
        status, _, page = stack.get("/trac/tracbzr/browser/")
        assert status == 200 and "README" in page, page[-1000:]
        status, _, page = stack.get("/trac/tracbzr/log/")
        assert "from the old host" in page

        # The old user, as Apache's htpasswd made them, logs in and commits.
        TracUser(stack.url("/trac/svn")).login(*OLD_USER)
        write_credentials(brz, stack.port, *OLD_USER)
        checkout = tmp_path / "checkout"
        brz("checkout", stack.bzr_url("arduino/trunk"), str(checkout))
        (checkout / "README").write_text("blink faster\n")
        brz("commit", "-m", "first commit from the new home", cwd=checkout)
        assert brz.revno(bzr_dir / "arduino" / "trunk") == 2

        logs = stack.compose("logs", "--no-color", "web").stdout
        assert "arduino: made log/" in logs
        assert "repaired conf/trac.ini (was Windows-1252, now UTF-8" in logs
        assert "svn: repaired conf/trac.ini ([header_logo] height set twice" in logs
        assert "serving 4 of 5 Trac projects; not garbled" in logs
        # Nothing lost: each repaired trac.ini has its copy.
        for name in ("svn", "rpc", "tracbzr"):
            assert list((trac_dir / name / "conf").glob("trac.ini.repair-*.bak")), name
    finally:
        stack.compose("down", "-v", check=False)
