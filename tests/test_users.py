"""The users file: who may write it, and that root never follows a link there."""

from __future__ import annotations

import errno
import os

import pytest

from trac_breezy.admin import users
from trac_breezy.container import identity
from trac_breezy.container.identity import Identity

STRANGER = Identity(4321, 4321)


def test_a_link_in_place_of_the_users_file_is_never_followed(tmp_path):
    """A dangling link there made root create a file, for the servers, at its target."""
    target = tmp_path / "elsewhere"
    (tmp_path / "htpasswd").symlink_to(target)
    with pytest.raises(OSError) as caught:
        users.ensure_file(tmp_path / "htpasswd")
    assert caught.value.errno == errno.ELOOP
    assert not target.exists()
    target.write_text("")
    with pytest.raises(OSError):
        users.hand_file_to(tmp_path / "htpasswd", STRANGER)


def test_the_servers_keep_the_file_when_they_may_change_its_folder(tmp_path):
    folder = tmp_path / "auth"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    owner = Identity(folder.stat().st_uid, folder.stat().st_gid)
    assert users.servers_keep_the_file(folder / "htpasswd", owner)
    if os.geteuid() == 0:  # someone else's folder: root writes and hands over
        assert not users.servers_keep_the_file(folder / "htpasswd", STRANGER)


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a file to another uid needs root")
def test_root_hands_the_file_it_wrote_to_the_servers(tmp_path):
    users.ensure_file(tmp_path / "htpasswd")
    users.hand_file_to(tmp_path / "htpasswd", STRANGER)
    info = (tmp_path / "htpasswd").stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (4321, 4321, 0o640)


def test_a_child_reports_what_went_wrong_in_one_line():
    def fails() -> None:
        raise users.UserError("the reason\nand the fix")

    assert identity.run_in_child(fails) == "the reason and the fix"
    assert identity.run_in_child(lambda: None) is None
    assert identity.run_in_child(lambda: 1 / 0) == "ZeroDivisionError: division by zero"
