"""Checks that look at several settings at once (each alone was valid).

Apart from `settings.py`'s table of single settings: these run on the loaded,
typed `Settings`, after every value passed its own check.
"""

from __future__ import annotations

from typing import Protocol


class Settings(Protocol):
    """The settings these checks read (`settings.Settings` has them).

    A protocol, not an import: `settings` imports this module to run them.
    """

    @property
    def trac_url_path(self) -> str: ...
    @property
    def bzr_url_path(self) -> str: ...
    @property
    def smtp_host(self) -> str: ...
    @property
    def smtp_from(self) -> str: ...
    @property
    def smtp_user(self) -> str: ...
    @property
    def smtp_password(self) -> str: ...
    @property
    def admin_user(self) -> str: ...
    @property
    def admin_password(self) -> str: ...
    @property
    def tls_cert_file(self) -> str: ...
    @property
    def tls_key_file(self) -> str: ...
    @property
    def tls_port(self) -> int: ...
    @property
    def listen_port(self) -> int: ...


def cross_checks(settings: Settings) -> list[str]:
    errors = _tls_cross_checks(settings)
    trac, bzr = settings.trac_url_path, settings.bzr_url_path
    if trac == bzr or trac.startswith(bzr + "/") or bzr.startswith(trac + "/"):
        errors.append(
            f"TRAC_URL_PATH={trac!r} and BZR_URL_PATH={bzr!r} overlap; give each its own path"
        )
    if settings.smtp_host and not settings.smtp_from:
        errors.append(
            "SMTP_HOST is set but SMTP_FROM is empty; set SMTP_FROM to the address mail comes "
            "from, or unset SMTP_HOST"
        )
    if settings.smtp_user and not settings.smtp_password:
        errors.append(
            "SMTP_USER is set but SMTP_PASSWORD is empty; set SMTP_PASSWORD or "
            "SMTP_PASSWORD_FILE, or unset SMTP_USER"
        )
    if settings.admin_user and not settings.admin_password:
        errors.append(
            "ADMIN_USER is set but ADMIN_PASSWORD is empty; set ADMIN_PASSWORD or "
            "ADMIN_PASSWORD_FILE, or unset ADMIN_USER"
        )
    return errors


def _tls_cross_checks(settings: Settings) -> list[str]:
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if bool(cert) != bool(key):
        given, missing = (
            ("TLS_CERT_FILE", "TLS_KEY_FILE") if cert else ("TLS_KEY_FILE", "TLS_CERT_FILE")
        )
        return [f"{given} is set but {missing} is empty; set both for HTTPS, or neither"]
    if cert and settings.tls_port == settings.listen_port:
        return [f"TLS_PORT={settings.tls_port} is LISTEN_PORT too; give HTTPS a port of its own"]
    return []
