"""Trac's mail as this container sends it: bounded waits, verified TLS, changeset links.

Trac's own `SmtpEmailSender` opens `smtplib.SMTP` without a timeout: an SMTP
server that accepts the connection and never answers would hold a ticket
save, or the thread that tells Trac about a push, for good. Its STARTTLS does
not check the server's certificate, and it has no SMTPS (TLS from the first
byte, port 465). `TracBreezySmtpSender` reads the same `[notification]`
options (`smtp_server`, `smtp_port`, `smtp_user`, `smtp_password`, `use_tls`
for STARTTLS) and three of its own (`use_ssl`, `smtp_timeout`,
`smtp_ca_file`); the shared trac.ini (`container/trac_ini.py`) selects it with
`email_sender` when SMTP_HOST is set.

A failure is one line on stderr (so in `docker logs`) and a `TracError`:
Trac's ticket page saves the change and shows the error as a warning, the
commit ticket updater logs it; neither the request nor the push fails.

`ChangesetLinkDecorator`: a plain-text mail cannot show Trac's wiki links, so
a ticket change whose comment links a changeset (the commit ticket updater's
`In [changeset:"REV/REPO" REV]:`) gets the changeset's URL under the ticket's.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.charset import Charset
from email.message import Message

from trac.config import BoolOption, IntOption, Option
from trac.core import Component, TracError, implements
from trac.notification.api import IEmailDecorator, IEmailSender, NotificationEvent
from trac.notification.mail import SMTPWithUnicodeCredsFixup, create_mime_text
from trac.util.text import CRLF, fix_eol

from trac_breezy import log, one_line


class _SMTPS(SMTPWithUnicodeCredsFixup, smtplib.SMTP_SSL):
    """SMTP over TLS from the first byte, with Trac's fix for non-ASCII logins."""


class TracBreezySmtpSender(Component):
    """Sends Trac's mail over SMTP with a timeout and verified TLS (STARTTLS or SMTPS)."""

    implements(IEmailSender)

    use_ssl = BoolOption(
        "notification",
        "use_ssl",
        "false",
        """Connect with TLS from the first byte (SMTPS, usually port 465), rather than
        upgrading a plain connection (`use_tls`, STARTTLS). (trac-breezy)""",
    )
    smtp_timeout = IntOption(
        "notification",
        "smtp_timeout",
        10,
        """Seconds to wait for the SMTP server at each step (connect, each command).
        (trac-breezy)""",
    )
    smtp_ca_file = Option(
        "notification",
        "smtp_ca_file",
        "",
        """PEM file of the CA certificates the SMTP server's certificate is checked
        against; empty: the system's. (trac-breezy)""",
    )

    def send(self, from_addr: str, recipients: list[str], message: bytes | str) -> None:
        section = self.config["notification"]
        host, port = section.get("smtp_server"), section.getint("smtp_port")
        self.log.info("Sending notification through SMTP at %s:%d to %s", host, port, recipients)
        try:
            self._send(host, port, from_addr, recipients, fix_eol(message, CRLF))
        except (OSError, smtplib.SMTPException) as error:
            problem = f"mail to {', '.join(recipients)} through {host}:{port} failed: {why(error)}"
            log(f"{self.env.path}: {problem}")
            raise TracError(problem) from None

    def _send(
        self, host: str, port: int, from_addr: str, recipients: list[str], message: bytes | str
    ) -> None:
        section = self.config["notification"]
        user, password = section.get("smtp_user"), section.get("smtp_password")
        with self._connect(host, port) as server:
            if section.getbool("use_tls") and not self.use_ssl:
                server.starttls(context=self._tls_context())
            if user:
                server.login(user, password)
            server.sendmail(from_addr, recipients, message)

    def _connect(self, host: str, port: int) -> smtplib.SMTP:
        if self.use_ssl:
            return _SMTPS(host, port, timeout=self.smtp_timeout, context=self._tls_context())
        smtp: smtplib.SMTP = SMTPWithUnicodeCredsFixup(host, port, timeout=self.smtp_timeout)
        return smtp

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.smtp_ca_file or None)


def why(error: BaseException) -> str:
    """What went wrong, on one line, with the fix for an unverifiable certificate."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"the server's certificate cannot be verified ({error.verify_message}); "
            "set SMTP_CA_FILE to its CA certificate"
        )
    # smtplib turns a timeout while reading a reply into "Connection unexpectedly closed".
    if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
        return "no answer within smtp_timeout (SMTP_TIMEOUT)"
    return one_line(f"{type(error).__name__}: {error}")


# `[changeset:"REV"` or `[changeset:"REV/REPO"`, as the commit ticket updater writes them.
_CHANGESET_LINK = re.compile(r'\[changeset:"([^"\]]+)"')


def changeset_paths(comment: str) -> list[str]:
    """The changesets a ticket comment links, in order, each once."""
    return list(dict.fromkeys(_CHANGESET_LINK.findall(comment or "")))


def with_lines_after_ticket_url(text: str, lines: list[str]) -> str:
    """`text` with `lines` below its "Ticket URL:" line (at the end if it has none)."""
    added = "".join(line + "\n" for line in lines)
    rows = text.splitlines(keepends=True)
    for index, row in enumerate(rows):
        if row.startswith("Ticket URL: "):
            return "".join([*rows[: index + 1], added, *rows[index + 1 :]])
    return text.rstrip("\n") + "\n" + added


def add_to_plain_text(container: Message, lines: list[str], charset: Charset) -> bool:
    """Put `lines` into the first text/plain part of a multipart message."""
    parts = container.get_payload()
    if not isinstance(parts, list):
        return False
    for index, part in enumerate(parts):
        if part.is_multipart():
            if add_to_plain_text(part, lines, charset):
                return True
        elif part.get_content_type() == "text/plain":
            raw = part.get_payload(decode=True)
            text = raw.decode(part.get_content_charset() or "utf-8", "replace")
            parts[index] = create_mime_text(
                with_lines_after_ticket_url(text, lines), "plain", charset
            )
            return True
    return False


class ChangesetLinkDecorator(Component):
    """Adds the URL of each changeset a ticket change links to its mail."""

    implements(IEmailDecorator)

    def decorate_message(
        self, event: NotificationEvent, message: Message, charset: Charset
    ) -> None:
        if event.realm != "ticket" or not getattr(event, "comment", None):
            return
        base = self.env.abs_href.base
        if not base.startswith(("http://", "https://")):
            return  # no absolute URL to give (TRAC_BASE_URL unset, no request)
        paths = changeset_paths(event.comment)
        if paths:
            lines = [f"Changeset: <{self.env.abs_href('changeset', path)}>" for path in paths]
            add_to_plain_text(message, lines, charset)
