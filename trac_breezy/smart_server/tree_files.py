"""The tree's plain files for `http://` readers, under the access rules (AUTHZ_FILE).

Why this exists: without rules Apache serves the tree's files itself (an
`AliasMatch`, by sendfile). With rules it cannot judge them: Apache has no
module that reads a Subversion authz file for plain files (mod_authz_svn
needs mod_dav_svn's repository paths). So with AUTHZ_FILE those requests
come here and are judged by the same rules and the same `authz` code as the
smart server. A place its visitor may not read is refused before the disk is
looked at: 401 (brz and browsers then ask for a password) for anonymous, 404
for a user, whether it exists or not; GET and HEAD only; no symlinks
followed, only regular files.

An allowed file is not sent from here: the answer is `200` with a local
`Location` (TREE_FILES_INTERNAL_PREFIX + its path), which mod_wsgi turns into
an internal redirect, as mod_cgi does, and Apache serves the file itself
(sendfile, byte ranges, text/plain) from an Alias only such redirects may
reach. A slow reader of a big pack file then holds an Apache worker, never
one of the smart server's daemon threads (it held them all: issue 19).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import quote
from wsgiref.types import StartResponse, WSGIEnvironment

from trac_breezy import authz, open_regular
from trac_breezy.setenv import TREE_FILES_INTERNAL_PREFIX, MisconfiguredError, SmartServerEnviron
from trac_breezy.smart_server.app import clean_segments, matched_path
from trac_breezy.smart_server.responses import plain_response


def tree_segments(environ: WSGIEnvironment, prefix: str) -> list[str] | None:
    """The segments of the requested file's path below the tree's URL, or None if invalid
    (judged as the smart server judges its URLs)."""
    path = matched_path(environ)
    if path is None or not path.startswith(prefix):
        return None
    return clean_segments(path[len(prefix) :]) or None


def is_plain_file(root: str, segments: list[str]) -> bool:
    """Whether `segments` below `root` is a regular file with no symlink on the way."""
    real_root = os.path.realpath(root)
    path = os.path.join(real_root, *segments)
    if os.path.realpath(path) != path:
        return False
    try:
        os.close(open_regular(path))
    except OSError:  # NotRegularFile too
        return False
    return True


def internal_location(segments: list[str]) -> str:
    """The URL of Apache's internal-only Alias of the tree for this file."""
    return TREE_FILES_INTERNAL_PREFIX + "/" + quote("/".join(segments), safe="/")


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
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
    if not is_plain_file(config.root, segments):
        return plain_response(start_response, "404 Not Found", "no such file\n")
    start_response(
        "200 OK", [("Location", internal_location(segments)), ("Content-Type", "text/plain")]
    )
    return []
