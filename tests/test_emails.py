"""Users' mail addresses: recorded beside the users file, written into every project
where Trac looks for them, filled in at start without undoing a user's own choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from trac.env import Environment
from trac.notification.mail import RecipientMatcher

from trac_breezy.admin import emails, users
from trac_breezy.container import settings


@pytest.fixture
def site(tmp_path: Path) -> settings.Settings:
    (tmp_path / "trac").mkdir()
    (tmp_path / "auth").mkdir()
    loaded = settings.load(
        {
            "TRAC_ENV_PARENT_DIR": str(tmp_path / "trac"),
            "HTPASSWD_PATH": str(tmp_path / "auth" / "htpasswd"),
        }
    )
    for name in ("code", "docs"):
        env = Environment(
            str(tmp_path / "trac" / name),
            create=True,
            options=[("trac", "database", "sqlite:db/trac.db")],
        )
        env.shutdown()
    (tmp_path / "auth" / "htpasswd").write_text("alice:x\nbob:x\n")
    return loaded


def address_in(site: settings.Settings, project: str, user: str) -> str | None:
    env = Environment(str(site.trac_env_parent_dir / project))
    try:
        return RecipientMatcher(env).match_recipient(user)[2]
    finally:
        env.shutdown()


def test_the_record_lives_beside_the_users_file(site):
    record = emails.record_path(site.htpasswd_path)
    assert record == site.htpasswd_path.with_name("htpasswd.emails")
    users.note_address(site.htpasswd_path, "alice", "alice@example.org")
    users.note_address(site.htpasswd_path, "bob", "bob@example.org")
    assert record.read_text() == "alice:alice@example.org\nbob:bob@example.org\n"
    assert record.stat().st_mode & 0o777 == 0o640
    users.note_address(site.htpasswd_path, "alice", None)
    assert emails.read(record) == {"bob": "bob@example.org"}


def test_only_users_get_addresses_and_only_addresses_trac_takes(site):
    with pytest.raises(users.UserError, match="there is no user 'carol'"):
        users.note_address(site.htpasswd_path, "carol", "carol@example.org")
    for bad in ("alice", "alice@localhost", "Alice <alice@example.org>", "a!b@example.org"):
        with pytest.raises(emails.EmailError, match="must be a mail address"):
            emails.check_address("alice", bad)


def test_the_command_sets_it_in_every_project(site):
    assert emails.set_everywhere(site, "alice", "alice@example.org") == ["code", "docs"]
    assert address_in(site, "code", "alice") == "alice@example.org"
    assert address_in(site, "docs", "alice") == "alice@example.org"
    emails.set_everywhere(site, "alice", "a.smith@example.org")  # a new one replaces it
    assert address_in(site, "docs", "alice") == "a.smith@example.org"


def test_at_start_projects_get_the_addresses_they_lack(site, capsys):
    emails.record(emails.record_path(site.htpasswd_path), "alice", "alice@example.org")
    emails.record(emails.record_path(site.htpasswd_path), "bob", "bob@example.org")
    emails.set_in_project(
        site.trac_env_parent_dir / "code", {"bob": "own@example.org"}, replace=True
    )
    emails.fill_in_at_start(site)
    err = capsys.readouterr().err
    assert "code: mail addresses of alice set from" in err
    assert "docs: mail addresses of alice, bob set from" in err
    assert address_in(site, "code", "bob") == "own@example.org"  # the user's own choice stays
    assert address_in(site, "docs", "bob") == "bob@example.org"
    emails.fill_in_at_start(site)
    assert capsys.readouterr().err == ""  # nothing more to do
