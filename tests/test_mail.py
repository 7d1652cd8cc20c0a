"""Trac's mail through the shared trac.ini and trac-breezy's sender, against a real
SMTP server (aiosmtpd): recipients, logins, STARTTLS and SMTPS with a test CA,
the changeset link, and failures that are bounded and named."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from smtp_server import TestCA, make_test_ca, silent_server, smtp_server
from trac.core import TracError
from trac.env import Environment
from trac.notification.api import NotificationSystem
from trac.ticket.model import Ticket
from trac.ticket.notification import TicketChangeEvent
from trac.util.datefmt import datetime_now, utc
from trac.web.session import DetachedSession

import trac_breezy.trac_app.mail as mail
from trac_breezy.container import settings, trac_ini

HOST = "127.0.0.1"
COMMIT_COMMENT = (
    'In [changeset:"3/code" 3]:\n{{{#!CommitTicketReference repository="code" revision="3"\n'
    "Stop the crash, fixes #1\n}}}"
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"), HOST)


def project(tmp_path: Path, **variables: str) -> Environment:
    """A Trac project inheriting the shared trac.ini made from `variables`."""
    loaded = settings.load(
        {
            "SMTP_HOST": HOST,
            "SMTP_FROM": "trac@example.org",
            "SMTP_DEFAULT_DOMAIN": "example.test",
            "TRAC_PLUGINS_DIR": str(tmp_path / "plugins"),
            **variables,
        }
    )
    shared = tmp_path / "trac-global.ini"
    shared.write_text(trac_ini.render(loaded, ()))
    env = Environment(
        str(tmp_path / "code"),
        create=True,
        options=[
            ("project", "name", "Code"),
            ("trac", "database", "sqlite:db/trac.db"),
            ("trac", "base_url", "https://trac.example.org/trac/code"),
            ("inherit", "file", str(shared)),
        ],
    )
    alice = DetachedSession(env, "alice")
    alice["email"] = "alice@example.org"
    alice.save()
    return env


def new_ticket(env: Environment) -> Ticket:
    ticket = Ticket(env)
    ticket.populate(
        {"summary": "It crashes", "reporter": "alice", "owner": "bob", "cc": "carol@example.net"}
    )
    ticket["status"] = "new"
    ticket.insert()
    return ticket


def close_by_commit(env: Environment, ticket: Ticket) -> None:
    now = datetime_now(utc)
    ticket["status"], ticket["resolution"] = "closed", "fixed"
    ticket.save_changes("dave", COMMIT_COMMENT, now)
    NotificationSystem(env).notify(
        TicketChangeEvent("changed", ticket, now, "dave", COMMIT_COMMENT)
    )


def test_the_shared_trac_ini_selects_our_sender():
    assert mail.TracBreezySmtpSender.__name__ == trac_ini.MAIL_SENDER
    assert mail.__name__ + ".*" == trac_ini.MAIL_COMPONENTS


def test_ticket_mail_reaches_reporter_owner_and_cc_with_the_changeset_linked(tmp_path):
    with smtp_server(HOST, users={"mailer": "pw"}) as (mailbox, port):
        env = project(tmp_path, SMTP_PORT=str(port), SMTP_USER="mailer", SMTP_PASSWORD="pw")
        ticket = new_ticket(env)
        NotificationSystem(env).notify(
            TicketChangeEvent("created", ticket, ticket["time"], "alice")
        )
        close_by_commit(env, ticket)
        created, closed = mailbox.wait_for(2)
    assert mailbox.logins == ["mailer", "mailer"]
    everyone = {"alice@example.org", "bob@example.test", "carol@example.net"}
    assert set(created.recipients) == everyone  # alice's own address, bob@SMTP_DEFAULT_DOMAIN
    assert set(closed.recipients) == everyone | {"dave@example.test"}  # and the committer
    assert closed.sender == "trac@example.org"
    assert closed.message["Reply-To"] == "trac@example.org"
    assert closed.subject == "Re: [Code] #1: It crashes"
    text = closed.text
    assert "Ticket URL: <https://trac.example.org/trac/code/ticket/1#comment:1>" in text
    assert "Changeset: <https://trac.example.org/trac/code/changeset/3/code>" in text
    assert "fixed" in text and "Stop the crash" in text
    assert "Changeset:" not in created.text


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_tls_is_verified_against_the_ca_file(tmp_path, ca: TestCA, mode: str):
    with smtp_server(HOST, tls=mode, ca=ca, users={"mailer": "pw"}) as (mailbox, port):
        env = project(
            tmp_path,
            SMTP_PORT=str(port),
            SMTP_TLS=mode,
            SMTP_CA_FILE=str(ca.ca),
            SMTP_USER="mailer",
            SMTP_PASSWORD="pw",
        )
        mail.TracBreezySmtpSender(env).send(
            "trac@example.org", ["a@example.org"], b"Subject: x\n\nhi\n"
        )
        (received,) = mailbox.wait_for(1)
    assert received.recipients == ["a@example.org"] and mailbox.logins == ["mailer"]


def test_a_certificate_no_ca_vouches_for_is_refused_with_the_fix(tmp_path, ca: TestCA):
    with smtp_server(HOST, tls="tls", ca=ca) as (mailbox, port):
        env = project(tmp_path, SMTP_PORT=str(port), SMTP_TLS="tls")
        with pytest.raises(TracError, match=r"cannot be verified.*set SMTP_CA_FILE"):
            mail.TracBreezySmtpSender(env).send("trac@example.org", ["a@example.org"], b"x")
    assert mailbox.messages == []


def test_a_silent_server_costs_no_more_than_the_timeout(tmp_path, capsys):
    with silent_server(HOST) as port:
        env = project(tmp_path, SMTP_PORT=str(port), SMTP_TIMEOUT="1")
        started = time.monotonic()
        with pytest.raises(TracError, match=f"through {HOST}:{port} failed: no answer"):
            mail.TracBreezySmtpSender(env).send("trac@example.org", ["a@example.org"], b"x")
        assert time.monotonic() - started < 5
    assert f"through {HOST}:{port} failed" in capsys.readouterr().err  # logged, one line


def test_a_closed_port_fails_at_once_and_names_the_server(tmp_path):
    with silent_server(HOST) as port:
        pass  # closed again: nothing listens there now
    env = project(tmp_path, SMTP_PORT=str(port))
    with pytest.raises(TracError, match=f"{HOST}:{port} failed: ConnectionRefusedError"):
        mail.TracBreezySmtpSender(env).send("trac@example.org", ["a@example.org"], b"x")


def test_changeset_paths_and_where_their_links_go():
    assert mail.changeset_paths(COMMIT_COMMENT + ' and [changeset:"4"], [changeset:"3/code"]') == [
        "3/code",
        "4",
    ]
    text = "body\n-- \nTicket URL: <u>\nCode <p>\n"
    assert mail.with_lines_after_ticket_url(text, ["Changeset: <c>"]) == (
        "body\n-- \nTicket URL: <u>\nChangeset: <c>\nCode <p>\n"
    )
    assert mail.with_lines_after_ticket_url("body", ["x"]) == "body\nx\n"
