"""Trac's PostgreSQL backend reads libpq's version the way psycopg2 offers it.

Why this exists: Trac 1.6 (`trac/db/postgres_backend.py`) asks for
`psycopg2.libpq_version()`, which psycopg2 has only ever had as
`psycopg2.extensions.libpq_version()`. Failing that, it finds the libpq file
name in psycopg2's binary as *bytes* and calls `ctypes.CDLL(b"libpq.so.5")`,
which Python 3.13's ctypes refuses (`TypeError: endswith first arg must be
bytes`). Trac catches that, but logs it with a traceback once per project
per process, in every project, PostgreSQL or not: each daemon's start looked
broken. Handing Trac the function it looks for makes it take its intended
path, with the version psycopg2 was linked against, and no guessing of file
names at all.

Trac loads this module as a plugin (`[project.entry-points."trac.plugins"]`),
before any project opens its database; it defines no component.
"""

from __future__ import annotations

try:
    import psycopg2
    import psycopg2.extensions
except ImportError:  # no PostgreSQL support in this Python: nothing to fix
    psycopg2 = None

if psycopg2 is not None and not hasattr(psycopg2, "libpq_version"):
    psycopg2.libpq_version = psycopg2.extensions.libpq_version
