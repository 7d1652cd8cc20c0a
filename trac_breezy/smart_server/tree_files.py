"""The tree's plain files for `http://` readers, under the access rules (AUTHZ_FILE).

Why this exists: without rules Apache serves the tree's files itself (an
`AliasMatch`, by sendfile). With rules it cannot: Apache has no module that
reads a Subversion authz file for plain files (mod_authz_svn needs
mod_dav_svn's repository paths). So with AUTHZ_FILE those requests come
here, are judged by the same rules and the same `authz` code as the smart
server, and the file goes back through mod_wsgi's `wsgi.file_wrapper`
(sendfile again). The answers are the ones Apache gave: GET and HEAD only,
no symlinks followed (Apache had `Options None`), files as text/plain, a
single byte range honoured (brz's dumb reader takes a whole file when it
asked for several). A place its visitor may not read is refused before the
disk is looked at: 401 (brz and browsers then ask for a password) for
anonymous, 404 for a user, whether it exists or not.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

from trac_breezy import authz, open_regular
from trac_breezy.setenv import MisconfiguredError, SmartServerEnviron
from trac_breezy.smart_server.app import clean_segments, matched_path
from trac_breezy.smart_server.responses import StartResponse, plain_response

_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})$")  # 18 digits: past any file size
BLOCK = 64 * 1024


def tree_segments(environ: dict[str, Any], prefix: str) -> list[str] | None:
    """The segments of the requested file's path below the tree's URL, or None if invalid
    (judged as the smart server judges its URLs)."""
    path = matched_path(environ)
    if path is None or not path.startswith(prefix):
        return None
    return clean_segments(path[len(prefix) :]) or None


def open_plain_file(root: str, segments: list[str]) -> IO[bytes] | None:
    """The regular file at `segments` below `root`, if no symlink lies on the way."""
    real_root = os.path.realpath(root)
    path = os.path.join(real_root, *segments)
    if os.path.realpath(path) != path:
        return None
    try:
        return os.fdopen(open_regular(path), "rb")
    except OSError:  # NotRegularFile too
        return None


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) of a single satisfiable `Range: bytes=...`, else None (whole file)."""
    match = _RANGE.match(header or "")
    if not match or size == 0:
        return None
    first, last = match.groups()
    if not first:
        if not last or int(last) == 0:
            return None
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end else None


def _slice(file: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        file.seek(start)
        while length > 0:
            block = file.read(min(BLOCK, length))
            if not block:
                return
            length -= len(block)
            yield block
    finally:
        file.close()


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """WSGI entry point named by tree-files.wsgi."""
    try:
        config = SmartServerEnviron.from_environ(environ)
    except MisconfiguredError as error:
        environ["wsgi.errors"].write(f"trac-breezy: {error}\n")
        return plain_response(start_response, "500 Internal Server Error", "misconfigured\n")
    if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
        return plain_response(
            start_response, "405 Method Not Allowed", "plain reads only\n", [("Allow", "GET, HEAD")]
        )
    segments = tree_segments(environ, config.prefix)
    if segments is None:
        return plain_response(start_response, "404 Not Found", "no such file\n")
    user = environ.get("REMOTE_USER") or None
    if config.authz_file:
        rules = authz.rule_file(config.authz_file).rules()
        if not rules.may(user, "/" + "/".join(segments), authz.READ):
            if user is None:
                return plain_response(
                    start_response,
                    "401 Unauthorized",
                    "this file needs a user name and password\n",
                    [("WWW-Authenticate", f'Basic realm="{config.realm}"')],
                )
            return plain_response(start_response, "404 Not Found", "no such file\n")
    file = open_plain_file(config.root, segments)
    if file is None:
        return plain_response(start_response, "404 Not Found", "no such file\n")
    return _send(environ, start_response, file)


def _send(
    environ: dict[str, Any], start_response: StartResponse, file: IO[bytes]
) -> Iterable[bytes]:
    size = os.fstat(file.fileno()).st_size
    headers = [("Content-Type", "text/plain"), ("Accept-Ranges", "bytes")]
    wanted = byte_range(environ.get("HTTP_RANGE"), size)
    if wanted is None:
        start_response("200 OK", [*headers, ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](file, BLOCK)
    first, last = wanted
    length = last - first + 1
    start_response(
        "206 Partial Content",
        [
            *headers,
            ("Content-Length", str(length)),
            ("Content-Range", f"bytes {first}-{last}/{size}"),
        ],
    )
    return _slice(file, first, length)
