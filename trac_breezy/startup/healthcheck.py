"""Container healthcheck: both apps answer, not merely the port.

Trac must render its project index (200), and the Bazaar smart server must
answer a protocol `hello` with `ok` (through mod_wsgi and Breezy, the same path
a `brz` client takes). Exit 0 when both do, 1 with the reason otherwise.
"""

from __future__ import annotations

import http.client
import os
import sys

from trac_breezy.container import settings
from trac_breezy.container.paths import HEALTH_TOKEN_FILE

# A complete smart-protocol version 2 request and its expected answer.
HELLO_REQUEST = b"bzr request 2\nhello\n"
HELLO_ANSWER_PREFIX = b"bzr response 2\nsuccess\nok\x01"


def check_trac(conn: http.client.HTTPConnection, path: str) -> str | None:
    conn.request("GET", path + "/")
    response = conn.getresponse()
    response.read()
    return None if response.status == 200 else f"Trac index {path}/ answered {response.status}"


def check_smart_server(conn: http.client.HTTPConnection, path: str) -> str | None:
    headers = {"Content-Type": "application/octet-stream"}
    token_file = HEALTH_TOKEN_FILE
    if token_file.exists():  # lets us past BZR_ANONYMOUS_READ=false
        headers["X-Trac-Breezy-Health"] = token_file.read_text().strip()
    conn.request("POST", path + "/.bzr/smart", body=HELLO_REQUEST, headers=headers)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or not body.startswith(HELLO_ANSWER_PREFIX):
        return f"smart server {path}/.bzr/smart answered {response.status} {body[:60]!r}"
    return None


def main() -> int:
    loaded = settings.load(os.environ)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", loaded.listen_port, timeout=20)
        problems = [
            check_trac(conn, loaded.trac_url_path),
            check_smart_server(conn, loaded.bzr_url_path),
        ]
    except OSError as error:
        problems = [f"cannot reach Apache: {error}"]
    problems = [p for p in problems if p]
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
