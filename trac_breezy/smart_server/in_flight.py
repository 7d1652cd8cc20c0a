"""Smart requests in progress, as files a stop can count.

Why: asked to stop, the container waits for the pushes in flight before it
stops Apache (trac_breezy/startup/apache_runner.py), since Apache gives
mod_wsgi's daemons only 3 s after that. It used to know a push only by its
Bazaar locks, and a new branch's push holds none while its stream arrives:
`docker stop` then cut a 96 MB push after 3.3 s. So each smart request keeps
a file named `<pid>.<n>` in the directory Apache names (`SetEnv
bzr_wsgi.requests_dir`) from its start until its answer is sent (the WSGI
iterable is closed). Creating and removing them also dates the directory:
its modification time is when the last request started or ended, which lets
the stop wait out the short pause between two requests of one push. The
container's healthcheck (a `hello` every 5 s) keeps no file: it would make
every stop wait. The stop's side (counting the files of live processes) is in
apache_runner.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from trac_breezy import log
from trac_breezy.setenv import HEALTHCHECK_KEY

_numbers = itertools.count()


class Marked:
    """A WSGI response that removes its request's file when closed."""

    def __init__(self, response: Iterable[bytes], marker: Path | None) -> None:
        self.response, self.marker = response, marker

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.response)

    def close(self) -> None:
        try:
            close = getattr(self.response, "close", None)
            if close is not None:
                close()
        finally:
            unmark(self.marker)


def mark(directory: str) -> Path | None:
    """A new file for one request in `directory` ("": none is kept)."""
    if not directory:
        return None
    marker = Path(directory) / f"{os.getpid()}.{next(_numbers)}"
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as error:  # the request is served all the same; a stop may cut it
        log(f"smart server: cannot note a request in flight in {directory}: {error}")
        return None
    return marker


def unmark(marker: Path | None) -> None:
    if marker is not None:
        marker.unlink(missing_ok=True)


def counted(
    directory: str,
    app: WSGIApplication,
    environ: WSGIEnvironment,
    start_response: StartResponse,
) -> Iterable[bytes]:
    """`app`'s answer to the request, with a file in `directory` while it is served
    (none for the container's healthcheck)."""
    marker = None if environ.get(HEALTHCHECK_KEY) else mark(directory)
    try:
        return Marked(app(environ, start_response), marker)
    except BaseException:
        unmark(marker)
        raise
