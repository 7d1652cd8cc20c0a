"""A real SMTP server for the mail tests (aiosmtpd), plain, STARTTLS or TLS, with a
test CA made by `openssl`; and a server that accepts connections and never answers."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    """One message as the server got it."""

    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        """The plain-text body."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part else ""

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])


@dataclass
class Mailbox:
    """aiosmtpd's handler: keeps every message; logins are checked against `users`."""

    users: dict[str, str] = field(default_factory=dict)
    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                self.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return list(self.messages)


@dataclass(frozen=True)
class TestCA:
    __test__ = False  # not a test class, whatever pytest thinks of the name

    """A CA and a server certificate it signed, as PEM files."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_test_ca(directory: Path, host: str) -> TestCA:
    """A throw-away CA (openssl) and a certificate for `host` (IP address or name)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    cert, key, csr = directory / "server.pem", directory / "server-key.pem", directory / "s.csr"
    san = f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}"
    # The extensions Python 3.13's strict verification (VERIFY_X509_STRICT) wants.
    (directory / "ext.cnf").write_text(
        f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ca_extensions = (
        "basicConstraints=critical,CA:TRUE",
        "keyUsage=critical,keyCertSign,cRLSign",
        "subjectKeyIdentifier=hash",
    )
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=trac-breezy test CA", "-keyout", str(ca_key), "-out", str(ca),
        *(arg for extension in ca_extensions for arg in ("-addext", extension)),
    )  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}",
            "-keyout", str(key), "-out", str(csr))  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(directory / "ext.cnf"),
            "-out", str(cert))  # fmt: skip
    for path in (ca, cert, key):
        path.chmod(0o644)
    return TestCA(ca, cert, key)


def free_port_on(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def smtp_server(
    host: str, *, tls: str = "none", ca: TestCA | None = None, users: dict[str, str] | None = None
) -> Iterator[tuple[Mailbox, int]]:
    """aiosmtpd on `host` (a free port): `tls` is none, starttls or tls (SMTPS)."""
    mailbox = Mailbox(users=dict(users or {}))
    port = free_port_on(host)
    # aiosmtpd offers AUTH over TLS only after STARTTLS; SMTPS is TLS from the start.
    kwargs: dict = {"authenticator": mailbox.authenticate, "auth_require_tls": tls == "starttls"}
    if tls == "starttls":
        kwargs.update(tls_context=ca.server_context(), require_starttls=True)  # type: ignore[union-attr]
    elif tls == "tls":
        kwargs.update(ssl_context=ca.server_context())  # type: ignore[union-attr]
    controller = Controller(mailbox, hostname=host, port=port, **kwargs)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@contextlib.contextmanager
def silent_server(host: str) -> Iterator[int]:
    """A port that accepts connections and never says a word (a stuck SMTP server)."""
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()
