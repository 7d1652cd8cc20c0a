"""HTTPS in the container's Apache: the certificate and key it serves, checked at start.

Apache runs as the servers' unprivileged user (supervisord starts it so, never
as root), so the key must be readable by that user. Two ways were open: ask
for a mounted key file that user can read, or let root copy the key at each
start. This does the second, which is the safer: the mounted key may stay
root's with mode 0600, like the password files in SECRETS_DIR (a key readable
by uid 33 on the host is readable by whatever else runs as 33 there), and
Apache reads a copy in root's run directory that the servers' user can read
but neither change nor replace (0640, root's, the servers' group). A process
of the servers' user can read the key either way while Apache runs: that is
the price of an Apache that never runs as root.

Root reads the mounted files only where the servers' user cannot change them
(container/trusted_files.py, as every NAME_FILE setting): else a link planted
there could make root copy any file, /etc/shadow or another secret, into the
servers' reach. Python's ssl module then loads the copies as Apache
will, so a key that does not belong to the certificate, or that needs a
passphrase nobody is there to type, stops the container with one line
instead of an Apache that exits at start.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import time
from pathlib import Path
from typing import Any

from trac_breezy import log, one_line
from trac_breezy.container import paths, trusted_files
from trac_breezy.container.checks import domain
from trac_breezy.container.identity import Identity
from trac_breezy.container.settings import Settings
from trac_breezy.startup.apache_config import ConfigError

# A certificate chain or a key is a few kilobytes; this is plenty.
MAX_FILE_BYTES = 1 << 20
CERT_MODE = 0o644
# Let's Encrypt renews 30 days ahead; a fortnight left means renewal failed.
EXPIRY_WARNING_DAYS = 14
KEY_MODE = 0o640


class _Passphrase(Exception):
    """The key is encrypted: OpenSSL asked for its passphrase."""


def install(loaded: Settings, server: Identity) -> str:
    """Root's copies of TLS_CERT_FILE and TLS_KEY_FILE for Apache, checked.

    Returns the host name the certificate is for (Apache's TLS host takes it
    as its ServerName, or warns at every start that the certificate does not
    name "localhost"), "" when there is none to take or HTTPS is off. When it
    is off, copies of an earlier start are removed.
    """
    remove_copies()
    if not loaded.tls_cert_file:
        return ""
    cert = read_file("TLS_CERT_FILE", loaded.tls_cert_file, server)
    key = read_file("TLS_KEY_FILE", loaded.tls_key_file, server)
    write_copy(paths.TLS_CERT, cert, server, CERT_MODE)
    write_copy(paths.TLS_KEY, key, server, KEY_MODE)
    try:
        check_pair(paths.TLS_CERT, paths.TLS_KEY, loaded)
    except ConfigError:
        remove_copies()
        raise
    log(f"HTTPS on port {loaded.tls_port} with the certificate in {loaded.tls_cert_file}")
    decoded = decode_certificate(paths.TLS_CERT)
    warn_if_expiring(loaded, decoded)
    return server_name(decoded)


def remove_copies() -> None:
    for copy in (paths.TLS_CERT, paths.TLS_KEY):
        copy.unlink(missing_ok=True)


def read_file(name: str, path: str, server: Identity) -> bytes:
    """The file's bytes; as root, only from where the servers' user cannot change it."""
    try:
        if os.geteuid() != 0:  # compose `user:`: we are the servers' user ourselves
            with open(path, "rb") as file:
                return file.read(MAX_FILE_BYTES)
        return read_unchangeable(name, path, server)
    except OSError as error:
        raise ConfigError(
            f"{name}={path}: {error.strerror}; mount the file there or unset {name}"
        ) from None


def read_unchangeable(name: str, path: str, server: Identity) -> bytes:
    """The file at `path`, read by root only where the servers' user could not change it."""
    try:
        return trusted_files.read_unchangeable(name, path, server, MAX_FILE_BYTES)
    except trusted_files.Untrusted as error:
        raise ConfigError(str(error)) from None


def write_copy(target: Path, data: bytes, server: Identity, mode: int) -> None:
    """A new file (never through a link) in root's run directory: root's, the servers' group."""
    target.unlink(missing_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as copy:
        if os.geteuid() == 0:
            os.fchown(copy.fileno(), 0, server.gid)
        os.fchmod(copy.fileno(), mode)
        copy.write(data)


def decode_certificate(cert: Path) -> dict[str, Any]:
    """The first certificate's fields as Python's ssl module decodes a peer's.

    ssl has no public call for a file's own certificate; CPython's
    `_test_decode_cert` has served that for fifteen years. Without it: {}.
    """
    try:
        decoded: dict[str, Any] = ssl._ssl._test_decode_cert(str(cert))  # type: ignore[attr-defined]
        return decoded
    except (AttributeError, OSError, ValueError):
        return {}


def server_name(decoded: dict[str, Any]) -> str:
    """The certificate's first DNS name (else its first IPv4 address), checked
    as Apache's configuration will hold it; a wildcard names no host."""
    alt_names: tuple[tuple[str, str], ...] = decoded.get("subjectAltName", ())
    for kind, usable in (("DNS", _is_host_name), ("IP Address", _is_ipv4)):
        for found_kind, name in alt_names:
            if found_kind == kind and usable(name):
                return name
    return ""


def _is_host_name(value: str) -> bool:
    return domain(value) is None


def _is_ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


def warn_if_expiring(loaded: Settings, decoded: dict[str, Any]) -> None:
    """A log line when the certificate has expired or soon will: clients will refuse it."""
    not_after = decoded.get("notAfter")
    if not not_after:
        return
    days = (ssl.cert_time_to_seconds(not_after) - time.time()) / 86400
    if days < 0:
        log(f"warning: the certificate in TLS_CERT_FILE={loaded.tls_cert_file} expired on "
            f"{not_after}; clients refuse it: renew it and restart")  # fmt: skip
    elif days < EXPIRY_WARNING_DAYS:
        log(f"warning: the certificate in TLS_CERT_FILE={loaded.tls_cert_file} expires on "
            f"{not_after}; renew it and restart")  # fmt: skip


def _no_passphrase(*_args: object) -> bytes:
    raise _Passphrase


def check_pair(cert: Path, key: Path, loaded: Settings) -> None:
    """Load the two files as Apache will (OpenSSL); ConfigError naming the variable if not."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert_name = f"TLS_CERT_FILE={loaded.tls_cert_file}"
    key_name = f"TLS_KEY_FILE={loaded.tls_key_file}"
    try:
        context.load_verify_locations(cafile=str(cert))
    except ssl.SSLError as error:
        raise ConfigError(
            f"{cert_name} holds no PEM certificate ({one_line(error)}); mount the certificate "
            "(-----BEGIN CERTIFICATE-----) or unset TLS_CERT_FILE"
        ) from None
    try:
        context.load_cert_chain(str(cert), str(key), password=_no_passphrase)
    except _Passphrase:
        raise ConfigError(
            f"{key_name} is encrypted with a passphrase, which nobody can type at start; "
            "mount it decrypted (openssl pkey -in KEY -out PLAIN-KEY)"
        ) from None
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"{key_name} is not the key of the certificate in {cert_name}; "
                "mount the key the certificate was issued for"
            ) from None
        raise ConfigError(
            f"{key_name} holds no private key that goes with {cert_name} "
            f"({one_line(error)}); mount the PEM key (-----BEGIN PRIVATE KEY-----)"
        ) from None
