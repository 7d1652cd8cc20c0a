"""PostgreSQL for Trac: new projects' database URI, the password file, waiting, restoring.

With TRAC_DATABASE_URL empty, a new project keeps Trac's default, an SQLite
file inside the environment. With `postgres://USER@HOST[:PORT]/DATABASE`, new
projects are made on that server, each in its own schema named after the
project (Trac's `?schema=` parameter), so one database holds them all.

The password is never written into trac.ini, where every backup and every
`trac-admin config` listing would show it. It comes from
TRAC_DATABASE_PASSWORD(_FILE) and is written to a libpq password file in the
run directory (mode 0600, owned by the server's user); PGPASSFILE points
there in the image, and libpq, which Trac's driver (psycopg2), `pg_dump` and
`psql` all use, reads it from there. Trac passes no password when its
connection string has none.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import subprocess
import time
from collections.abc import Callable
from configparser import RawConfigParser
from pathlib import Path
from urllib.parse import urlsplit

from trac_breezy import one_line, replace_file
from trac_breezy.admin import AdminError
from trac_breezy.container.paths import PGPASS_FILE
from trac_breezy.container.settings import Settings

SQLITE_DEFAULT = "sqlite:db/trac.db"
# What `trac-admin hotcopy` writes for a non-SQLite environment.
POSTGRES_DUMP = Path("db/postgres-db-backup.sql.gz")
PSQL = "/usr/bin/psql"


class DatabaseError(AdminError):
    """The database cannot be used; the text says why and what to do."""


def new_project_uri(settings: Settings, project: str) -> str:
    """The `[trac] database` of a new project."""
    url = settings.trac_database_url
    return f"{url}?schema={project}" if url else SQLITE_DEFAULT


def write_pgpass(settings: Settings) -> None:
    """The libpq password file for TRAC_DATABASE_URL (or none without a password).

    Replaced in one step: the admin commands rewrite it while Trac may read it.
    """
    url, password = settings.trac_database_url, settings.trac_database_password
    if not url or not password:
        PGPASS_FILE.unlink(missing_ok=True)
        return
    parts = urlsplit(url)
    fields = [parts.hostname or "*", str(parts.port or 5432), "*", parts.username or "*", password]
    line = ":".join(field.replace("\\", "\\\\").replace(":", "\\:") for field in fields)
    # `docker compose run` (a restore) starts no entrypoint: nobody made the
    # servers' run directory yet.
    PGPASS_FILE.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    replace_file(PGPASS_FILE, line + "\n", 0o600)


def connect_to_server(settings: Settings) -> None:
    """What every process that uses TRAC_DATABASE_URL does first: password file, then wait."""
    write_pgpass(settings)
    wait_for_server(settings)


def wait_for_server(
    settings: Settings,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once PostgreSQL accepts a connection; DatabaseError when it will not."""
    url = settings.trac_database_url
    if not url:
        return
    import psycopg2

    wait = settings.trac_database_wait
    deadline = clock() + wait
    where = urlsplit(url)
    libpq_url = where._replace(scheme="postgresql").geturl()
    while True:
        try:
            psycopg2.connect(libpq_url, connect_timeout=5).close()
            return
        except psycopg2.OperationalError as error:
            reason = one_line(error)
            if is_permanent(reason):
                raise DatabaseError(
                    f"TRAC_DATABASE_URL={url}: {reason}; check the user, the database name "
                    "and TRAC_DATABASE_PASSWORD(_FILE)"
                ) from None
            if clock() >= deadline:
                raise DatabaseError(
                    f"TRAC_DATABASE_URL={url}: no PostgreSQL answered at {where.hostname}:"
                    f"{where.port or 5432} within TRAC_DATABASE_WAIT={wait} s ({reason}); start "
                    "it (docker compose --profile postgres up) or fix TRAC_DATABASE_URL"
                ) from None
        sleep(1)


def is_permanent(reason: str) -> bool:
    """Errors that waiting will not cure (libpq's messages)."""
    return any(
        marker in reason
        for marker in ("password authentication failed", "does not exist", "no password supplied")
    )


def env_database(env_path: Path) -> str:
    config = RawConfigParser(interpolation=None)
    config.read(env_path / "conf" / "trac.ini", encoding="utf-8")
    return config.get("trac", "database", fallback=SQLITE_DEFAULT)


def restore_from_hotcopy(env_path: Path, hotcopy: Path, *, replace: bool) -> None:
    """Load a PostgreSQL environment's schema from its hotcopy's dump.

    `replace`: drop the schema first (undoing a failed upgrade); else refuse
    a schema that holds tables. An SQLite database is a file inside the
    environment, restored with the other files, so there is nothing to do.
    """
    uri = env_database(hotcopy)
    if not uri.startswith("postgres://"):
        return
    parts = urlsplit(uri)
    schema = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get(
        "schema", "public"
    )
    server = parts._replace(scheme="postgresql", query="").geturl()
    if not replace and schema_has_tables(server, schema):
        raise DatabaseError(
            f"{env_path.name}: schema {schema} of {server} holds tables already; restore into "
            "a fresh database, or drop the schema first"
        )
    with gzip.open(hotcopy / POSTGRES_DUMP, "rt", encoding="utf-8") as dump:
        statements = [f'DROP SCHEMA IF EXISTS "{schema}" CASCADE;\n']
        # The dump was made with `pg_dump -C` (create the database, connect
        # to it): we are connected to that database already.
        statements += [
            line
            for line in dump
            if not line.startswith(("CREATE DATABASE ", "ALTER DATABASE ", "\\connect "))
        ]
    result = subprocess.run(
        [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", server],
        input="".join(statements),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"},
    )
    if result.returncode != 0:
        raise DatabaseError(
            f"{env_path.name}: loading schema {schema} from {hotcopy / POSTGRES_DUMP} failed: "
            f"{one_line(result.stderr)[-400:]}"
        )


def schema_has_tables(server: str, schema: str) -> bool:
    import psycopg2

    query = "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s"
    with (
        contextlib.closing(psycopg2.connect(server, connect_timeout=10)) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(query, (schema,))
        count: int = cursor.fetchone()[0]
        return count > 0
