"""An old host's users file, mounted as it is (issue 20), through the real image.

The file is made by Apache's own `htpasswd` (the image's: `-m` apr1, `-s`
SHA-1, `-d` crypt, `-B` bcrypt, `-p` plain text), mounted as the users file
(AUTH_DATA), first as htpasswd wrote it, then as it comes from a Windows host:
CRLF line endings, a UTF-8 byte order mark, comments and blank lines. Each user
logs in to Trac and pushes with brz; a wrong password and the plain-text line
(Apache on Linux never accepted those) are refused. `trac-breezy-user passwd`
then rewrites one line with bcrypt and leaves every other byte as it was.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import running_stack
from stack import ADMIN, Brz, Stack, run, write_credentials
from test_e2e_bzr_access import make_branch
from trac_web import TracUser

from trac_breezy.admin.users_file import BOM, inspect

pytestmark = pytest.mark.e2e
PROJECT = "old"
# user -> htpasswd's flag for the kind of hash the old host made
KINDS = {"md5user": "-m", "shauser": "-s", "cryptuser": "-d", "bcryptuser": "-B"}
SHADOWED = "the second line's password"


def password(user: str) -> str:
    return f"old pw of {user}"


def htpasswd_line(image: str, flag: str, user: str, secret: str) -> bytes:
    """What Apache's `htpasswd -n` prints for the user: the line of the file."""
    printed = run(
        ["docker", "run", "--rm", "--entrypoint", "htpasswd", image, "-nb", flag, user, secret]
    )
    return printed.stdout.strip().encode()


@pytest.fixture(scope="module")
def old_lines(image: str) -> list[bytes]:
    made = [htpasswd_line(image, flag, user, password(user)) for user, flag in KINDS.items()]
    plain = htpasswd_line(image, "-p", "plainuser", password("plainuser"))
    # A second line for a user, as a hand edit leaves: the first one counts, as in Apache.
    return [*made, plain, htpasswd_line(image, "-B", "shauser", SHADOWED)]


@pytest.fixture(scope="module")
def users_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("auth")
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def old_stack(image: str, users_dir: Path, old_lines: list[bytes]) -> Iterator[Stack]:
    (users_dir / "htpasswd").write_bytes(b"".join(line + b"\n" for line in old_lines))
    with running_stack(
        image,
        "usersfile",
        ADMIN_USER=ADMIN[0],
        ADMIN_PASSWORD=ADMIN[1],
        TRAC_PROJECTS=PROJECT,
        AUTH_DATA=str(users_dir),
        LOGIN_FAILURE_LIMIT="0",
    ) as stack:
        yield stack


def smart_status(stack: Stack, user: str, secret: str, path: str = "/bzr/.bzr/smart") -> int:
    """The status of a smart `hello` (or of a GET of Trac's `path`) with these credentials."""
    credentials = base64.b64encode(f"{user}:{secret}".encode()).decode()
    request = urllib.request.Request(
        stack.url(path),
        data=b"bzr request 2\nhello\n" if path.endswith("/smart") else None,
        headers={"Authorization": f"Basic {credentials}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def logs_in_and_pushes(stack: Stack, tmp_path: Path, user: str, secret: str, branch: str) -> None:
    TracUser(stack.url(f"/trac/{PROJECT}")).login(user, secret)
    brz = Brz(tmp_path / f"home-{branch}")
    write_credentials(brz, stack.port, user, secret)
    local = make_branch(brz, tmp_path / branch, f"{branch}\n")
    brz("push", stack.bzr_url(branch), cwd=local)
    assert brz.revno(stack.bzr_url(branch)) == 1


def check_every_user(stack: Stack, tmp_path: Path, variant: str) -> None:
    for user in KINDS:
        logs_in_and_pushes(stack, tmp_path, user, password(user), f"{user}-{variant}")
        assert smart_status(stack, user, "wrong") == 401, user
        assert smart_status(stack, user, "wrong", f"/trac/{PROJECT}/login") == 401, user
    # Plain text never worked with Apache on Linux, and does not here.
    assert smart_status(stack, "plainuser", password("plainuser")) == 401
    assert smart_status(stack, "shauser", SHADOWED) == 401


def windows_file(old_lines: list[bytes]) -> bytes:
    """The same users as a Windows host keeps them: BOM, CRLF, comments, blank lines."""
    return BOM + b"\r\n".join(
        [old_lines[0], b"# team accounts: 2009", b"", *old_lines[1:], b"  # the end", b""]
    )


def test_every_kind_htpasswd_made_logs_in_and_pushes(old_stack: Stack, tmp_path: Path):
    check_every_user(old_stack, tmp_path, "lf")


def test_the_same_file_from_a_windows_host_logs_in_and_pushes(
    old_stack: Stack, users_dir: Path, old_lines: list[bytes], tmp_path: Path
):
    """The first user's name started with the byte order mark: refused."""
    (users_dir / "htpasswd").write_bytes(windows_file(old_lines))
    check_every_user(old_stack, tmp_path, "crlf")
    listed = old_stack.exec("trac-breezy-user", "list").stdout.split()
    assert listed == [*KINDS, "plainuser"]  # the file as mounted: no admin line


def test_passwd_rewrites_one_line_with_bcrypt_and_keeps_every_other_byte(
    old_stack: Stack, users_dir: Path, old_lines: list[bytes], tmp_path: Path
):
    path = users_dir / "htpasswd"
    path.write_bytes(windows_file(old_lines))
    before = path.read_bytes()
    assert any("1 plain text" in f.text for f in inspect(path))
    old_stack.exec("trac-breezy-user", "passwd", "md5user", "--password-stdin", input="new pw\n")
    after = path.read_bytes().split(b"\n")
    kept = before[len(BOM) :].split(b"\n")
    assert after[0].startswith(b"md5user:$2y$"), after[0]
    assert after[1:] == kept[1:]  # CRLF lines, comments, blank lines: byte for byte
    logs_in_and_pushes(old_stack, tmp_path, "md5user", "new pw", "md5user-new")
    assert smart_status(old_stack, "md5user", password("md5user")) == 401
