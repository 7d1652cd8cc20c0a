"""HTTPS's certificate and key at start (trac_breezy/startup/tls.py): root reads
them only where the servers' user cannot change them, copies them for Apache,
and stops with one line when they do not go together."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from trac_breezy.container import paths, settings
from trac_breezy.container.identity import Identity
from trac_breezy.startup import tls
from trac_breezy.startup.apache_config import ConfigError

# Some user that is neither the test's nor anybody's on the host.
STRANGER = Identity(54321, 54321)


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pair(directory: Path, name: str = "server", passphrase: str | None = None) -> Path:
    """A self-signed certificate `name`.crt and its key `name`.key."""
    key_args = ["-passout", f"pass:{passphrase}"] if passphrase else ["-nodes"]
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", *key_args, "-days", "2",
        "-subj", "/CN=localhost", "-keyout", str(directory / f"{name}.key"),
        "-out", str(directory / f"{name}.crt"),
    )  # fmt: skip
    return directory


@pytest.fixture
def copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Root's copies go to a temporary folder instead of the run directory."""
    cert, key = tmp_path / "copy-cert.pem", tmp_path / "copy-key.pem"
    monkeypatch.setattr(paths, "TLS_CERT", cert)
    monkeypatch.setattr(paths, "TLS_KEY", key)
    return cert, key


def tls_settings(cert: Path, key: Path) -> settings.Settings:
    return settings.load({"TLS_CERT_FILE": str(cert), "TLS_KEY_FILE": str(key)})


def test_root_reads_files_and_follows_links_where_the_servers_cannot_change_them():
    assert tls.read_unchangeable("TLS_CERT_FILE", "/etc/passwd", STRANGER) == (
        Path("/etc/passwd").read_bytes()
    )
    if Path("/etc/os-release").is_symlink():  # ../usr/lib/os-release in Debian
        assert tls.read_unchangeable("TLS_CERT_FILE", "/etc/os-release", STRANGER) == (
            Path("/etc/os-release").read_bytes()
        )


def test_a_file_in_a_folder_of_the_servers_user_is_not_read(private_dir: Path):
    (private_dir / "tls.key").write_text("secret")
    if os.geteuid() != 0:
        pytest.skip("only root can give the folder to another user")
    os.chown(private_dir, STRANGER.uid, STRANGER.gid)  # the servers' user owns the folder
    with pytest.raises(ConfigError) as caught:
        tls.read_unchangeable("TLS_KEY_FILE", str(private_dir / "tls.key"), STRANGER)
    message = str(caught.value)
    assert message.startswith(f"TLS_KEY_FILE={private_dir}/tls.key: {private_dir} (owner 54321:")
    assert "can be changed by the servers' user 54321:54321" in message and "\n" not in message


def test_a_file_the_servers_user_may_write_is_not_read(private_dir: Path):
    key = private_dir / "tls.key"
    key.write_text("secret")
    key.chmod(0o666)
    with pytest.raises(ConfigError, match=r"tls\.key \(owner .*mode -rw-rw-rw-\) can be changed"):
        tls.read_unchangeable("TLS_KEY_FILE", str(key), STRANGER)


def test_a_link_planted_where_the_servers_can_write_is_never_followed(private_dir: Path):
    """The attack: the servers' user links key.pem to a file only root may read,
    and root would copy it into the servers' reach."""
    planted = private_dir / "volume"
    planted.mkdir()
    planted.chmod(0o777)
    (planted / "key.pem").symlink_to("/etc/shadow")
    with pytest.raises(ConfigError, match=rf"{planted} \(owner .*\) can be changed"):
        tls.read_unchangeable("TLS_KEY_FILE", str(planted / "key.pem"), STRANGER)
    # The same link where only the admin can put it is followed (k8s secrets are links).
    (private_dir / "passwd-link").symlink_to("../" * 10 + "etc/passwd")
    assert tls.read_unchangeable("X", str(private_dir / "passwd-link"), STRANGER) == (
        Path("/etc/passwd").read_bytes()
    )


def test_a_missing_file_names_the_variable_and_the_fix(private_dir: Path):
    with pytest.raises(ConfigError) as caught:
        tls.read_file("TLS_CERT_FILE", str(private_dir / "absent.crt"), STRANGER)
    assert str(caught.value) == (
        f"TLS_CERT_FILE={private_dir}/absent.crt: No such file or directory; "
        "mount the file there or unset TLS_CERT_FILE"
    )


def test_matching_pair_is_copied_for_apache(tmp_path: Path, copies: tuple[Path, Path]):
    make_pair(tmp_path)
    cert, key = copies
    loaded = tls_settings(tmp_path / "server.crt", tmp_path / "server.key")
    tls.write_copy(cert, (tmp_path / "server.crt").read_bytes(), STRANGER, tls.CERT_MODE)
    tls.write_copy(key, (tmp_path / "server.key").read_bytes(), STRANGER, tls.KEY_MODE)
    tls.check_pair(cert, key, loaded)
    assert stat.S_IMODE(cert.stat().st_mode) == 0o644
    assert stat.S_IMODE(key.stat().st_mode) == 0o640
    assert key.read_bytes() == (tmp_path / "server.key").read_bytes()
    if os.geteuid() == 0:  # root's, the servers' group
        assert (key.stat().st_uid, key.stat().st_gid) == (0, STRANGER.gid)


def test_https_off_removes_the_copies_of_an_earlier_start(copies: tuple[Path, Path]):
    for copy in copies:
        copy.write_text("old")
    assert tls.install(settings.load({}), STRANGER) == ""
    assert not any(copy.exists() for copy in copies)


def check(tmp_path: Path, cert: Path, key: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        tls.check_pair(cert, key, tls_settings(cert, key))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_key_of_another_certificate_is_refused(tmp_path: Path):
    make_pair(tmp_path, "one")
    make_pair(tmp_path, "two")
    message = check(tmp_path, tmp_path / "one.crt", tmp_path / "two.key")
    assert message == (
        f"TLS_KEY_FILE={tmp_path}/two.key is not the key of the certificate in "
        f"TLS_CERT_FILE={tmp_path}/one.crt; mount the key the certificate was issued for"
    )


def test_a_key_with_a_passphrase_is_refused(tmp_path: Path):
    make_pair(tmp_path, passphrase="secret")
    message = check(tmp_path, tmp_path / "server.crt", tmp_path / "server.key")
    assert message.startswith(f"TLS_KEY_FILE={tmp_path}/server.key is encrypted with a passphrase")


def test_something_else_than_a_certificate_is_refused(tmp_path: Path):
    make_pair(tmp_path)
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    message = check(tmp_path, tmp_path / "notes.txt", tmp_path / "server.key")
    assert message.startswith(f"TLS_CERT_FILE={tmp_path}/notes.txt holds no PEM certificate (")
    message = check(tmp_path, tmp_path / "server.crt", tmp_path / "notes.txt")
    assert message.startswith(f"TLS_KEY_FILE={tmp_path}/notes.txt holds no private key")


def test_the_certificate_s_own_name_is_given_to_apache_s_tls_host(tmp_path: Path):
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=x",
        "-addext", "subjectAltName=DNS:*.example.org,IP:192.0.2.7,DNS:trac.example.org",
        "-keyout", str(tmp_path / "k"), "-out", str(tmp_path / "c"),
    )  # fmt: skip
    decoded = tls.decode_certificate(tmp_path / "c")
    assert tls.server_name(decoded) == "trac.example.org"  # DNS first, never a wildcard
    assert tls.server_name({"subjectAltName": (("IP Address", "192.0.2.7"),)}) == "192.0.2.7"
    # Nothing that could change Apache's configuration, nor IPv6 (ServerName wants [..]).
    for hostile in ('a"b', "a\nInclude /etc/shadow", "a b", "::1"):
        alt_names = (("DNS", hostile), ("IP Address", hostile))
        assert tls.server_name({"subjectAltName": alt_names}) == ""
    assert tls.server_name({}) == "" and tls.decode_certificate(tmp_path / "k") == {}


def test_a_certificate_about_to_expire_is_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    loaded = tls_settings(tmp_path / "c", tmp_path / "k")
    tls.warn_if_expiring(loaded, {"notAfter": "Jan  1 00:00:00 2020 GMT"})
    assert "expired on Jan  1 00:00:00 2020 GMT; clients refuse it" in capsys.readouterr().err
    make_pair(tmp_path)  # valid for two days
    tls.warn_if_expiring(loaded, tls.decode_certificate(tmp_path / "server.crt"))
    assert "expires on" in capsys.readouterr().err
    tls.warn_if_expiring(loaded, {"notAfter": "Jan  1 00:00:00 2099 GMT"})
    assert capsys.readouterr().err == ""
