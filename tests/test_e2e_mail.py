"""End to end: Trac's mail from the container to a real SMTP server (aiosmtpd, on the
host's Docker bridge address), over STARTTLS with a test CA and a login.

A ticket made and commented on in the web pages, then closed by a pushed "fixes
#N", mails its reporter (address given with `trac-breezy-user`), its owner (at
SMTP_DEFAULT_DOMAIN) and its CC, with the ticket's and the changeset's URLs; a
TRAC_INI__ value from a compose.override.yaml shows in the subject. A server that
never answers costs a ticket save at most SMTP_TIMEOUT and a push nothing; the
failure is in the log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import new_stack
from smtp_server import TestCA, make_test_ca, silent_server, smtp_server
from stack import ADMIN, Brz, Stack, run, write_credentials
from trac_web import TracUser, warnings

pytestmark = pytest.mark.e2e

SUBJECT_PREFIX = "[code-e2e]"


@dataclass
class OverriddenStack(Stack):
    """compose.yaml with a compose.override.yaml, as README, Any trac.ini setting, says."""

    override: str = ""

    def compose(self, *args: str, **kwargs):  # type: ignore[override]
        return super().compose("-f", self.override, *args, **kwargs)


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge: containers reach the host there.

    The address of the `docker0` interface itself. Not the bridge network's IPAM
    `Gateway`: a freshly started Docker 20.10 daemon reports only a `Subnet` there
    (shared/NOTES.md), which gave '' on a new machine.
    """
    line = run(["ip", "-4", "-o", "addr", "show", "dev", "docker0"]).stdout.split()
    address = line[line.index("inet") + 1].split("/")[0] if "inet" in line else ""
    assert address, "docker0 has no IPv4 address: is the Docker engine's default bridge up?"
    return address


def mail_stack(image: str, name: str, tmp: Path, **env: str) -> OverriddenStack:
    override = tmp / "compose.override.yaml"
    override.write_text(
        "services:\n  web:\n    environment:\n"
        f'      TRAC_INI__notification__smtp_subject_prefix: "{SUBJECT_PREFIX}"\n'
        '      TRAC_INI__ticket__default_version: "2.0"\n'
    )
    plain = new_stack(image, name, **env)
    stack = OverriddenStack(
        **{f.name: getattr(plain, f.name) for f in dataclasses.fields(plain)},
        override=str(override),
    )
    stack.env_overrides["TRAC_BASE_URL"] = f"http://127.0.0.1:{stack.port}/trac"
    return stack


@contextlib.contextmanager
def up(stack: Stack) -> Iterator[Stack]:
    try:
        print(f"{stack.project}: healthy {stack.up():.1f} s after `up`")
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)


def push_fix(stack: Stack, brz: Brz, work: Path, message: str) -> None:
    if not work.exists():
        brz("init-shared-repo", stack.bzr_url("code"))
        brz("init", str(work))
        (work / "README").write_text("hello\n")
        brz("add", cwd=work)
        brz("commit", "-m", "Start", cwd=work)
        brz("push", stack.bzr_url("code/trunk"), cwd=work)
    (work / "fix.py").write_text(f"# {message}\n")
    brz("add", cwd=work)
    brz("commit", "-m", message, cwd=work)
    brz("push", cwd=work)


def wait_for_ticket(stack: Stack, project: str, ticket: int, text: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        status, _, page = stack.get(f"/trac/{project}/ticket/{ticket}")
        if status == 200 and text in page:
            return page
        assert time.monotonic() < deadline, page[-3000:]
        time.sleep(0.5)


@pytest.fixture(scope="module")
def gateway() -> str:
    return bridge_gateway()


@pytest.fixture(scope="module")
def ca(gateway: str, tmp_path_factory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"), gateway)


def test_ticket_mail_from_the_web_and_from_a_push(
    image: str, gateway: str, ca: TestCA, tmp_path: Path
):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "smtp-ca.pem").write_bytes(ca.ca.read_bytes())
    (secrets / "smtp-ca.pem").chmod(0o644)
    (secrets / "smtp-password").write_text("mail pass\n")
    (secrets / "smtp-password").chmod(0o600)
    with smtp_server(gateway, tls="starttls", ca=ca, users={"mailer": "mail pass"}) as (
        mailbox,
        port,
    ):
        stack = mail_stack(
            image,
            "mail",
            tmp_path,
            ADMIN_USER=ADMIN[0],
            ADMIN_PASSWORD=ADMIN[1],
            TRAC_PROJECTS="code",
            TRAC_REPOSITORIES="code=code",
            SECRETS_DIR=str(secrets),
            SMTP_HOST=gateway,
            SMTP_PORT=str(port),
            SMTP_TLS="starttls",
            SMTP_CA_FILE="/run/secrets/trac-breezy/smtp-ca.pem",
            SMTP_USER="mailer",
            SMTP_PASSWORD_FILE="/run/secrets/trac-breezy/smtp-password",
            SMTP_FROM="trac@example.org",
            SMTP_DEFAULT_DOMAIN="example.test",
        )
        with up(stack):
            check_the_shared_file(stack)
            added = stack.exec(
                "trac-breezy-user", "add", "alice", "--email", "alice@example.org",
                "--password-stdin", input="alice pw\n",
            ).stdout  # fmt: skip
            assert "alice <alice@example.org> in: code" in added

            alice = TracUser(stack.url("/trac/code"))
            alice.login("alice", "alice pw")
            status, page = alice.new_ticket(
                summary="It crashes", description="Boom.", owner="bob", cc="carol@example.net"
            )
            assert status == 200 and "It crashes" in page and not warnings(page), warnings(page)
            admin = TracUser(stack.url("/trac/code"))
            admin.login(*ADMIN)
            status, page = admin.comment(1, "Looking into it.")
            assert status == 200 and not warnings(page), warnings(page)

            brz = Brz(tmp_path / "home")
            write_credentials(brz, stack.port, *ADMIN)
            push_fix(stack, brz, tmp_path / "work", "Stop the crash, fixes #1")
            wait_for_ticket(stack, "code", 1, "Stop the crash")
            created, commented, closed = mailbox.wait_for(3)

    base = f"http://127.0.0.1:{stack.port}/trac/code"
    everyone = {"alice@example.org", "bob@example.test", "carol@example.net"}
    for message in (created, commented, closed):
        assert everyone <= set(message.recipients), message.recipients
        assert message.sender == "trac@example.org"
        assert f"{SUBJECT_PREFIX} #1: It crashes" in message.subject  # from TRAC_INI__
    assert "admin@example.test" in commented.recipients  # the updater hears of it too
    assert mailbox.logins == ["mailer"] * 3  # over STARTTLS, verified against the test CA
    assert f"Ticket URL: <{base}/ticket/1>" in created.text
    assert "Looking into it." in commented.text
    assert "closed" in closed.text and "fixed" in closed.text
    assert "Stop the crash, fixes #1" in closed.text
    assert f"Changeset: <{base}/changeset/" in closed.text, closed.text
    assert f"Ticket URL: <{base}/ticket/1#comment:2>" in closed.text


def check_the_shared_file(stack: Stack) -> None:
    """Root's, 0640 for the servers' group; the password there and nowhere in the project."""
    shown = stack.exec("stat", "-c", "%U:%G %a", "/run/trac-breezy/trac-global.ini").stdout
    assert shown.split() == ["root:www-data", "640"]
    ini = stack.exec("cat", "/var/lib/trac/code/conf/trac.ini").stdout
    assert "file = /run/trac-breezy/trac-global.ini" in ini and "mail pass" not in ini
    version = stack.exec(
        "trac-admin", "/var/lib/trac/code", "config", "get", "ticket", "default_version",
        user="www-data",
    ).stdout  # fmt: skip
    assert version.strip() == "2.0"


def test_a_server_that_never_answers_delays_a_save_briefly_and_never_a_push(
    image: str, gateway: str, tmp_path: Path
):
    with silent_server(gateway) as port:
        stack = mail_stack(
            image,
            "mailfail",
            tmp_path,
            ADMIN_USER=ADMIN[0],
            ADMIN_PASSWORD=ADMIN[1],
            TRAC_PROJECTS="code",
            TRAC_REPOSITORIES="code=code",
            SMTP_HOST=gateway,
            SMTP_PORT=str(port),
            SMTP_FROM="trac@example.org",
            SMTP_DEFAULT_DOMAIN="example.test",
            SMTP_TIMEOUT="3",
        )
        with up(stack):
            admin = TracUser(stack.url("/trac/code"))
            admin.login(*ADMIN)
            started = time.monotonic()
            status, page = admin.new_ticket(summary="Mail is down", owner="bob")
            seconds = time.monotonic() - started
            assert status == 200 and "Mail is down" in page
            said = " ".join(warnings(page))
            assert "created, but an error occurred while sending notifications" in said, said
            assert "no answer within smtp_timeout" in said
            assert seconds < 15, f"the save took {seconds:.1f} s"

            brz = Brz(tmp_path / "home")
            write_credentials(brz, stack.port, *ADMIN)
            started = time.monotonic()
            push_fix(stack, brz, tmp_path / "work", "Mail or not, fixes #1")
            pushed = time.monotonic() - started
            wait_for_ticket(stack, "code", 1, "Mail or not")
            status, _, page = stack.get("/trac/code/ticket/1")
            assert "closed" in page
            deadline = time.monotonic() + 30
            while (logs := stack.compose("logs", "--no-color", "web").stdout).count(
                f"through {gateway}:{port} failed: no answer"
            ) < 2:
                assert time.monotonic() < deadline, logs[-3000:]
                time.sleep(1)
    print(f"ticket save with a silent SMTP server: {seconds:.1f} s; first push {pushed:.1f} s")
