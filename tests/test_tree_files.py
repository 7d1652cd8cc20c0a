"""The tree's plain files under access rules (smart_server/tree_files.py).

With AUTHZ_FILE, Apache hands every plain read of the tree to this app
(tests/test_apache_config.py checks the routing); these tests call it the
way mod_wsgi does, and `tests/test_e2e_authz_bzr.py` through real Apache.
An allowed file is answered with the internal `Location` Apache then serves
(byte ranges included: `tests/test_e2e_authz_bzr.py`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from trac_breezy.setenv import SmartServerEnviron
from trac_breezy.smart_server.tree_files import application

RULES = "[/]\n* =\n[/public]\n* = r\n[/alpha]\nalice = r\n"


class Answer:
    status = ""
    headers: dict[str, str]
    body = b""


def get(root: Path, authz: Path | None, path: str, user: str | None = None, **extra: str):
    setenv = SmartServerEnviron(
        root=str(root), prefix="/bzr/", mode="read-write", realm="r", authz_file=str(authz or "")
    ).setenv()
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/bzr/" + path,
        "PATH_INFO": "",
        "wsgi.errors": io.StringIO(),
        **dict(setenv),
        **extra,
    }
    if user:
        environ["REMOTE_USER"] = user
    answer = Answer()

    def start_response(status: str, headers: list[tuple[str, str]], *exc_info: object) -> None:
        answer.status, answer.headers = status, dict(headers)

    answer.body = b"".join(application(environ, start_response))
    return answer


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    for name in ("public", "alpha"):
        (root / name / ".bzr").mkdir(parents=True)
        (root / name / ".bzr" / "data").write_bytes(name.encode() * 1000)
    authz = tmp_path / "authz"
    authz.write_text(RULES)
    return root, authz


def test_files_are_served_to_who_may_read_them(tree: tuple[Path, Path]) -> None:
    root, authz = tree
    answer = get(root, authz, "public/.bzr/data")
    # Apache serves it itself: an internal redirect (mod_wsgi: 200 with a local Location).
    assert answer.status == "200 OK" and answer.body == b""
    assert answer.headers["Location"] == "/.tree-files/public/.bzr/data"
    alice = get(root, authz, "alpha/.bzr/data", "alice")
    assert alice.headers["Location"] == "/.tree-files/alpha/.bzr/data"
    (root / "public" / "a b?#%").write_bytes(b"odd")
    odd = get(root, authz, "public/a b?#%")
    assert odd.headers["Location"] == "/.tree-files/public/a%20b%3F%23%25"


def test_a_place_its_visitor_may_not_read_is_refused_before_the_disk_is_asked(
    tree: tuple[Path, Path],
) -> None:
    root, authz = tree
    anonymous = get(root, authz, "alpha/.bzr/data")
    assert (
        anonymous.status == "401 Unauthorized" and "Basic" in anonymous.headers["WWW-Authenticate"]
    )
    assert get(root, authz, "alpha/missing").status == "401 Unauthorized"  # exists or not
    assert get(root, authz, "alpha/.bzr/data", "bob").status == "404 Not Found"
    assert get(root, authz, "alpha/missing", "bob").status == "404 Not Found"


def test_without_rules_every_file_is_served(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert get(root, None, "alpha/.bzr/data").status == "200 OK"


def test_symlinks_and_odd_paths_are_never_followed(tree: tuple[Path, Path]) -> None:
    root, authz = tree
    os.symlink(root / "alpha" / ".bzr" / "data", root / "public" / "link")
    os.symlink(root / "alpha", root / "public" / "dir")
    os.mkfifo(root / "public" / "fifo")
    for path in ("public/link", "public/dir/.bzr/data", "public/fifo", "public/../alpha/x"):
        assert get(root, authz, path, "alice").status == "404 Not Found", path
    assert get(root, authz, "public/.bzr", "alice").status == "404 Not Found"  # a directory
