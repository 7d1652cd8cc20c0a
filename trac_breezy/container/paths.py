"""Where this container keeps its files: each path declared once.

`RUN_DIR` holds what root makes at each start (the rendered Apache
configuration, the health token, the trac.ini every Trac project inherits)
and belongs to root when the container starts as root: the servers' user can
read it but change nothing in it.
Everything the servers write at run time (pid files, sockets, HOME, the egg
cache, libpq's password file) lives in `SERVER_RUN_DIR` below it, which root
makes anew at each start and never reads back. `SHARE_DIR` holds what the
image ships (the Apache template, the WSGI scripts, supervisord's
configuration). supervisord.conf reads its paths from the environment the
entrypoint hands it (`supervisor_environment`), so they are not written there
a second time.
"""

from __future__ import annotations

from pathlib import Path

RUN_DIR = Path("/run/trac-breezy")
HTTPD_CONF = RUN_DIR / "httpd.conf"
# Written by the entrypoint at each start, read by the healthcheck.
HEALTH_TOKEN_FILE = RUN_DIR / "health-token"
# The trac.ini every project inherits (`[inherit] file`): mail, TRAC_INI__*,
# plugins. Root's, mode 0640, group the servers' (it holds the SMTP password).
TRAC_GLOBAL_INI = RUN_DIR / "trac-global.ini"
# Root's copies of TLS_CERT_FILE and TLS_KEY_FILE, which Apache (unprivileged)
# reads: the key 0640 with the servers' group, made anew at each start.
TLS_CERT = RUN_DIR / "tls-cert.pem"
TLS_KEY = RUN_DIR / "tls-key.pem"

SERVER_RUN_DIR = RUN_DIR / "server"
# libpq's password file; the image's PGPASSFILE names it (a test checks).
PGPASS_FILE = SERVER_RUN_DIR / "pgpass"
# Left by the FATAL listener when Apache could not stay up.
FATAL_MARKER = SERVER_RUN_DIR / "fatal"
# HOME of the servers' user (Breezy reads its configuration from there).
SERVER_HOME = SERVER_RUN_DIR / "home"
EGG_CACHE = SERVER_RUN_DIR / "egg-cache"
# A file per smart request in progress, which a stop waits for
# (smart_server/in_flight.py, startup/apache_runner.py).
SMART_REQUESTS_DIR = SERVER_RUN_DIR / "smart-requests"
# Trac projects the start could not open or upgrade, with why (JSON, name ->
# one line), for the front page (admin/migrate.py, trac_app/front/projects.py).
PROJECT_ERRORS = SERVER_RUN_DIR / "project-errors.json"

SHARE_DIR = Path("/usr/share/trac-breezy")
APACHE_DIR = SHARE_DIR / "apache"
WSGI_DIR = SHARE_DIR / "wsgi"
EMPTY_DIR = SHARE_DIR / "empty"
SUPERVISORD_CONF = SHARE_DIR / "supervisord.conf"


def supervisor_environment() -> dict[str, str]:
    """The variables supervisord.conf expands (`%(ENV_NAME)s`)."""
    return {"TRAC_BREEZY_SERVER_RUN_DIR": str(SERVER_RUN_DIR)}
