"""Trac on PostgreSQL: compose.yaml's `postgres` profile against a real server.

The official `postgres:17` image that compose.yaml names cannot be pulled on
machines without a registry; scripts/make-postgres-image builds a stand-in
from Debian's PostgreSQL 17 packages with the same interface (POSTGRES_USER,
POSTGRES_DB, POSTGRES_PASSWORD_FILE, pg_isready), and POSTGRES_IMAGE points
compose.yaml at it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import new_stack
from stack import ADMIN, ROOT, Stack, new_ticket, run

pytestmark = pytest.mark.e2e
POSTGRES_IMAGE = "trac-breezy-test/postgres:17"
PASSWORD = "a long random password: with colons\\and a backslash"


@pytest.fixture(scope="module")
def postgres_image() -> str:
    run(
        [str(ROOT / "scripts" / "make-postgres-image")],
        timeout=1200,
        env={**os.environ, "POSTGRES_IMAGE": POSTGRES_IMAGE},
    )
    return POSTGRES_IMAGE


@pytest.fixture(scope="module")
def pg_stack(image: str, postgres_image: str, tmp_path_factory) -> Iterator[Stack]:
    secrets = tmp_path_factory.mktemp("secrets")
    (secrets / "postgres-password").write_text(PASSWORD + "\n")
    (secrets / "wrong-password").write_text("not the password\n")
    for secret in secrets.iterdir():
        secret.chmod(0o600)
    backups = tmp_path_factory.mktemp("backups")
    backups.chmod(0o755)  # as Docker makes a missing ./backups
    stack = new_stack(
        image,
        "pg",
        COMPOSE_PROFILES="postgres",
        POSTGRES_IMAGE=postgres_image,
        SECRETS_DIR=str(secrets),
        BACKUP_DIR=str(backups),
        TRAC_DATABASE_URL="postgres://trac@postgres/trac",
        TRAC_DATABASE_PASSWORD_FILE="/run/secrets/trac-breezy/postgres-password",
        TRAC_PROJECTS="pgone,pgtwo",
        ADMIN_USER=ADMIN[0],
        ADMIN_PASSWORD=ADMIN[1],
    )
    try:
        stack.up()  # the entrypoint waits for PostgreSQL to accept connections
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)


def psql(stack: Stack, sql: str) -> str:
    return stack.compose(
        "exec", "-T", "postgres", "psql", "-U", "trac", "-d", "trac", "-At", "-c", sql
    ).stdout.strip()


def test_new_projects_live_in_postgres_without_the_password_in_trac_ini(pg_stack: Stack):
    ini = pg_stack.exec("cat", "/var/lib/trac/pgone/conf/trac.ini").stdout
    assert "database = postgres://trac@postgres/trac?schema=pgone" in ini
    assert "random password" not in ini
    assert pg_stack.exec("test", "-e", "/var/lib/trac/pgone/db/trac.db", check=False).returncode

    schemas = psql(pg_stack, "SELECT schema_name FROM information_schema.schemata ORDER BY 1")
    assert {"pgone", "pgtwo"} <= set(schemas.split())
    assert psql(pg_stack, "SELECT value FROM pgone.system WHERE name = 'database_version'") == "45"


def test_a_ticket_survives_down_and_up(pg_stack: Stack):
    ticket = new_ticket(pg_stack, "/var/lib/trac/pgone", "stored in PostgreSQL")
    assert psql(pg_stack, f"SELECT summary FROM pgone.ticket WHERE id = {ticket}") == (
        "stored in PostgreSQL"
    )
    pg_stack.compose("down")  # containers gone, volumes kept
    pg_stack.up()
    status, _, page = pg_stack.get(f"/trac/pgone/ticket/{ticket}")
    assert status == 200 and "stored in PostgreSQL" in page


def test_a_wrong_password_stops_the_container_with_one_clear_line(pg_stack: Stack):
    result = pg_stack.compose(
        "run",
        "--rm",
        "-T",
        "-e",
        "TRAC_DATABASE_PASSWORD_FILE=/run/secrets/trac-breezy/wrong-password",
        "web",
        check=False,
    )
    assert result.returncode == 2
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("trac-breezy: error:")]
    assert "TRAC_DATABASE_URL=postgres://trac@postgres/trac" in line
    assert "password authentication failed" in line


def test_backup_and_restore_of_a_postgres_project(pg_stack: Stack):
    ticket = new_ticket(pg_stack, "/var/lib/trac/pgtwo", "dumped and loaded")
    folder = Path(pg_stack.exec("trac-breezy-backup").stdout.strip())
    assert (
        pg_stack.exec(
            "test", "-s", f"{folder}/trac/pgtwo/db/postgres-db-backup.sql.gz", check=False
        ).returncode
        == 0
    )
    pg_stack.compose("down", "-v")  # the database is gone too
    pg_stack.compose("up", "-d", "postgres")
    pg_stack.compose("run", "--rm", "-T", "web", "trac-breezy-restore", str(folder))
    pg_stack.up()
    status, _, page = pg_stack.get(f"/trac/pgtwo/ticket/{ticket}")
    assert status == 200 and "dumped and loaded" in page
    # Restoring again would overwrite: refused, nothing touched.
    again = pg_stack.compose(
        "run", "--rm", "-T", "web", "trac-breezy-restore", str(folder), check=False
    )
    assert again.returncode == 1 and "exist already" in again.stderr
