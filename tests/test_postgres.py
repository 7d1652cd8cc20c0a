"""PostgreSQL helpers: connection strings of new projects and libpq's password file."""

from __future__ import annotations

import stat

import pytest

from trac_breezy.admin import postgres
from trac_breezy.container import settings
from trac_breezy.container.settings import Settings


def values(**env: str) -> Settings:
    return settings.load(env)


def test_new_projects_get_sqlite_or_their_own_schema():
    assert postgres.new_project_uri(values(), "code") == "sqlite:db/trac.db"
    url = "postgres://trac@db:5433/trac"
    assert (
        postgres.new_project_uri(values(TRAC_DATABASE_URL=url), "code")
        == "postgres://trac@db:5433/trac?schema=code"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgres://trac:secret@db/trac",  # the password belongs in the _FILE
        "postgresql://trac@db/trac",
        "postgres://db/trac",
        "postgres://trac@db/trac?schema=x",
        "mysql://trac@db/trac",
    ],
)
def test_bad_urls_are_refused(url):
    with pytest.raises(settings.SettingsError, match="TRAC_DATABASE_URL"):
        values(TRAC_DATABASE_URL=url)


def test_password_file_is_private_and_escaped(tmp_path, monkeypatch):
    monkeypatch.setattr(postgres, "PGPASS_FILE", tmp_path / "pgpass")
    postgres.write_pgpass(
        values(TRAC_DATABASE_URL="postgres://trac@db/trac", TRAC_DATABASE_PASSWORD="a:b\\c")
    )
    assert (tmp_path / "pgpass").read_text() == "db:5432:*:trac:a\\:b\\\\c\n"
    assert stat.S_IMODE((tmp_path / "pgpass").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["pgpass"]
    postgres.write_pgpass(values())  # SQLite again: no password file left behind
    assert not (tmp_path / "pgpass").exists()


def test_only_errors_that_waiting_cannot_cure_are_permanent():
    assert postgres.is_permanent('FATAL: password authentication failed for user "trac"')
    assert postgres.is_permanent('FATAL: database "trac" does not exist')
    assert not postgres.is_permanent("FATAL: the database system is starting up")
    assert not postgres.is_permanent('could not translate host name "postgres" to address')


def test_password_file_where_no_entrypoint_made_the_run_directory(tmp_path, monkeypatch):
    """`docker compose run ... trac-breezy-restore` starts no entrypoint."""
    monkeypatch.setattr(postgres, "PGPASS_FILE", tmp_path / "server" / "pgpass")
    postgres.write_pgpass(
        values(TRAC_DATABASE_URL="postgres://trac@db/trac", TRAC_DATABASE_PASSWORD="pw")
    )
    assert (tmp_path / "server" / "pgpass").read_text() == "db:5432:*:trac:pw\n"
