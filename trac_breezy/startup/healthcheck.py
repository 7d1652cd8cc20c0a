"""Container healthcheck: both apps answer, not merely the port.

Trac must render its project index (200), and the Bazaar smart server must
answer a protocol `hello` with `ok` (through mod_wsgi and Breezy, the same path
a `brz` client takes). With HTTPS on, its port must complete a TLS handshake
and answer too (the certificate is not verified: it names the public host).
Exit 0 when all do, 1 with the reason otherwise. Every request carries the
token made at each start, which keeps them out of the access log (and lets
the smart-server check past BZR_ANONYMOUS_READ=false).
"""

from __future__ import annotations

import http.client
import os
import ssl
import sys

from trac_breezy.container import settings
from trac_breezy.container.paths import HEALTH_TOKEN_FILE

# A complete smart-protocol version 2 request and its expected answer.
HELLO_REQUEST = b"bzr request 2\nhello\n"
HELLO_ANSWER_PREFIX = b"bzr response 2\nsuccess\nok\x01"


def health_headers() -> dict[str, str]:
    """The token header Apache knows the healthcheck by (none before the first start)."""
    if not HEALTH_TOKEN_FILE.exists():
        return {}
    return {"X-Trac-Breezy-Health": HEALTH_TOKEN_FILE.read_text().strip()}


def check_trac(conn: http.client.HTTPConnection, path: str) -> str | None:
    conn.request("GET", path + "/", headers=health_headers())
    response = conn.getresponse()
    response.read()
    return None if response.status == 200 else f"Trac index {path}/ answered {response.status}"


def check_smart_server(conn: http.client.HTTPConnection, path: str) -> str | None:
    headers = {"Content-Type": "application/octet-stream", **health_headers()}
    conn.request("POST", path + "/.bzr/smart", body=HELLO_REQUEST, headers=headers)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or not body.startswith(HELLO_ANSWER_PREFIX):
        return f"smart server {path}/.bzr/smart answered {response.status} {body[:60]!r}"
    return None


def check_https(port: int) -> str | None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=20, context=context)
    try:
        conn.request("GET", "/", headers=health_headers())
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as error:
        return f"HTTPS on port {port}: {error}"
    finally:
        conn.close()
    return None if response.status < 400 else f"HTTPS / answered {response.status}"


def main() -> int:
    loaded = settings.load(os.environ)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", loaded.listen_port, timeout=20)
        problems = [
            check_trac(conn, loaded.trac_url_path),
            check_smart_server(conn, loaded.bzr_url_path),
        ]
        if loaded.tls_cert_file:
            problems.append(check_https(loaded.tls_port))
    except OSError as error:
        problems = [f"cannot reach Apache: {error}"]
    problems = [p for p in problems if p]
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
