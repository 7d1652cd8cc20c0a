"""Root reads NAME_FILE settings (SMTP_PASSWORD_FILE, ADMIN_PASSWORD_FILE,
TRAC_INI__..._FILE, ...) only where the servers' user cannot change anything
(container/trusted_files.py), as it reads TLS_CERT_FILE: real files, as root.

The attack (issue 19, finding 6): SMTP_PASSWORD_FILE names a file in a folder
the servers' user (www-data) can write; that user plants a link there to a file
only root may read, and root copies it into the shared trac.ini the servers
read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from trac_breezy.container import settings, trac_ini
from trac_breezy.container.identity import DEFAULT_GID, DEFAULT_UID

MAIL = {"SMTP_HOST": "smtp.example.org", "SMTP_FROM": "trac@example.org", "SMTP_USER": "m"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root reads these files at start")


@pytest.fixture
def root_only_secret(private_dir: Path) -> Path:
    """A file only root may read (as /etc/shadow is), in root's own folder."""
    secret = private_dir / "root-only"
    secret.write_text("root's secret\n")
    secret.chmod(0o600)
    return secret


@pytest.fixture
def servers_folder(private_dir: Path) -> Iterator[Path]:
    """A folder www-data (the servers' user by default) owns and can write."""
    folder = private_dir / "volume"
    folder.mkdir()
    os.chown(folder, DEFAULT_UID, DEFAULT_GID)
    yield folder


def load_error(environ: dict[str, str]) -> str:
    with pytest.raises(settings.SettingsError) as caught:
        settings.load(environ)
    (message,) = caught.value.messages
    assert "\n" not in message
    return message


def test_a_normal_secret_is_read(private_dir: Path):
    password = private_dir / "smtp-password"
    password.write_text("pa%ss; #word\n")
    password.chmod(0o600)
    loaded = settings.load({**MAIL, "SMTP_PASSWORD_FILE": str(password)})
    assert loaded.smtp_password == "pa%ss; #word"


def test_a_link_planted_by_the_servers_user_is_not_followed(
    servers_folder: Path, root_only_secret: Path
):
    planted = servers_folder / "smtp-password"
    planted.symlink_to(root_only_secret)
    message = load_error({**MAIL, "SMTP_PASSWORD_FILE": str(planted)})
    assert message.startswith(f"SMTP_PASSWORD_FILE={planted}: {servers_folder} (owner 33:33")
    assert "can be changed by the servers' user 33:33, so root will not read it" in message
    assert "root's secret" not in message


def test_a_file_in_a_folder_the_servers_user_can_write_is_not_read(servers_folder: Path):
    password = servers_folder / "admin-password"
    password.write_text("s3cret\n")
    os.chown(password, 0, 0)
    password.chmod(0o600)  # root's own file, but the folder is not
    environ = {"ADMIN_USER": "admin", "ADMIN_PASSWORD_FILE": str(password)}
    assert "can be changed by the servers' user" in load_error(environ)


def test_a_fifo_is_refused_without_waiting_for_a_writer(private_dir: Path):
    fifo = private_dir / "database-password"
    os.mkfifo(fifo, 0o600)
    result: list[str] = []
    reader = threading.Thread(
        target=lambda: result.append(load_error({"TRAC_DATABASE_PASSWORD_FILE": str(fifo)})),
        daemon=True,
    )
    reader.start()
    reader.join(10)
    assert result == [
        f"TRAC_DATABASE_PASSWORD_FILE={fifo} is not a regular file; mount the file there "
        "or unset TRAC_DATABASE_PASSWORD_FILE"
    ]


def test_trac_ini_values_from_files_are_read_the_same_way(
    servers_folder: Path, root_only_secret: Path
):
    planted = servers_folder / "akismet"
    planted.symlink_to(root_only_secret)
    with pytest.raises(settings.SettingsError) as caught:
        trac_ini.load({"TRAC_INI__spam-filter__akismet_api_key_FILE": str(planted)})
    (message,) = caught.value.messages
    assert "can be changed by the servers' user" in message and "\n" not in message
    (value,) = trac_ini.load({"TRAC_INI__spam-filter__akismet_api_key_FILE": str(root_only_secret)})
    assert value.value == "root's secret"


def test_the_servers_user_is_the_one_puid_names(private_dir: Path):
    """PUID=1234: a folder of 1234's is the servers'; one of www-data's is not."""
    folder = private_dir / "puid"
    folder.mkdir()
    os.chown(folder, 1234, 1234)
    password = folder / "smtp-password"
    password.write_text("x\n")
    message = load_error({**MAIL, "PUID": "1234", "SMTP_PASSWORD_FILE": str(password)})
    assert "servers' user 1234:" in message
    os.chown(folder, DEFAULT_UID, DEFAULT_GID)
    loaded = settings.load({**MAIL, "PUID": "1234", "SMTP_PASSWORD_FILE": str(password)})
    assert loaded.smtp_password == "x"


def test_the_files_that_decide_the_servers_user_are_read_only_from_root_s_folders(
    servers_folder: Path, private_dir: Path
):
    puid = servers_folder / "puid"
    puid.write_text("1234\n")
    os.chown(puid, 0, 0)
    assert "changed by users other than root" in load_error({"PUID_FILE": str(puid)})
    own = private_dir / "puid"
    own.write_text("1234\n")
    assert settings.load({"PUID_FILE": str(own)}).puid == 1234


def test_a_relative_path_is_refused(private_dir: Path):
    """Resolved from wherever root happens to be: never."""
    assert load_error({"SMTP_PASSWORD_FILE": "secrets/smtp"}) == (
        "SMTP_PASSWORD_FILE=secrets/smtp is not an absolute path; name the file from /"
    )
