"""Attacks on the running image that once worked, and must not any more.

Each test here failed on the image before the fix it names (see
docs/reliability.md for the whole table): the servers' user planting links
for root to follow, and files a pusher writes becoming pages of Trac's origin.
"""

from __future__ import annotations

import pytest
from stack import Stack

pytestmark = pytest.mark.e2e
WWW_DATA = "www-data"


def as_server(stack: Stack, script: str, check: bool = True):
    return stack.exec("sh", "-c", script, user=WWW_DATA, check=check)


def test_root_follows_nothing_the_servers_user_can_change(stack: Stack):
    # The run directory is root's: the servers' user writes only below server/.
    refused = as_server(stack, "touch /run/trac-breezy/planted", check=False)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    # Links planted where root used to chown (home) or create files (htpasswd).
    as_server(
        stack,
        "rm -rf /run/trac-breezy/server/home && ln -s /etc /run/trac-breezy/server/home && "
        "ln -s /etc/planted-by-www-data /run/trac-breezy/server/egg-cache-link",
    )
    stack.compose("restart", "web")
    stack.wait_healthy(90)
    owners = stack.exec("stat", "-c", "%U", "/etc", "/run/trac-breezy").stdout.split()
    assert owners == ["root", "root"]
    home = stack.exec("stat", "-c", "%F %U", "/run/trac-breezy/server/home").stdout.strip()
    assert home == f"directory {WWW_DATA}"
    assert stack.exec("test", "-e", "/etc/planted-by-www-data", check=False).returncode != 0
    # No identity file to rewrite: the admin commands work it out, and never as root.
    assert stack.exec("test", "-e", "/run/trac-breezy/identity", check=False).returncode != 0
    backup = stack.exec("trac-breezy-backup").stdout.strip().splitlines()[-1]
    owners = stack.exec("sh", "-c", f"find {backup} -printf '%u\\n' | sort -u").stdout.split()
    assert owners == [WWW_DATA], owners


def test_files_pushers_write_are_inert_on_trac_s_origin(stack: Stack):
    """A pushed notes.html was served as text/html with no CSP: script there
    could read a Trac admin's form token."""
    as_server(stack, "echo '<script>alert(document.cookie)</script>' > /srv/bzr/notes.html")
    status, headers, body = stack.get("/bzr/notes.html")
    assert status == 200 and "<script>" in body
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "sandbox"
    status, headers, listing = stack.get("/bzr/")
    assert status == 200 and "notes.html" in listing
    assert headers["Content-Type"].startswith("text/html")  # Apache's listing
    assert headers["Content-Security-Policy"] == "sandbox"
    status, headers, _ = stack.get("/trac/")
    assert status == 200
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
