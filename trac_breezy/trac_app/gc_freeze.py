"""WSGI middleware around Trac (and the smart server): freeze the warm heap,
so Trac's collection after every request stays cheap, and keep it freeable.

Trac's `dispatch_request` ends every request with a full `gc.collect()`, which
walks every object of the warm process; frozen (`gc.freeze()`), those objects
are skipped, and refreezing now and then (after 1, 2, 4, ... 1024 requests,
then every 1024, when no other request runs) keeps late garbage bounded. The
same upkeep sweeps Breezy's repositories (`collectable`). Why each choice, and
what it costs: docs/architecture.md, "The heap freeze around Trac".
"""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from trac_breezy.trac_app.bzr import collectable

WSGIApp = WSGIApplication

#: After warm-up, the heap is frozen again every this many requests.
REFREEZE_EVERY = 1024
#: Requests between two sweeps for repositories the collector cannot free.
#: A pull served makes ~10 smart requests, which open ~3 repositories each;
#: a sweep walks the tracked objects in C (~2 ms per 100,000), and collects
#: only when it found some. Trac pages measured no slower sweeping every one.
SWEEP_EVERY = 4


def is_refreeze_due(served: int, every: int = REFREEZE_EVERY) -> bool:
    """True after request 1, 2, 4, ... `every`, then after every `every` more."""
    if served < every:
        return served & (served - 1) == 0
    return served % every == 0


def refreeze() -> None:
    """Unfreeze, collect everything that died, freeze what is left."""
    gc.unfreeze()
    collectable.sweep()
    gc.collect()
    gc.freeze()


def sweep() -> None:
    """Make new Breezy repositories freeable; collect if there were any."""
    if collectable.sweep():
        gc.collect()


class InFlight:
    """How many requests of the wrapped apps are running (process-wide)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self._count += 1

    def leave(self) -> int:
        """Count one request less; how many others still run."""
        with self._lock:
            self._count -= 1
            return self._count


#: One heap per process, whichever app a request is for: one count of the
#: requests running, and one thread at a time refreezing or sweeping it.
in_flight = InFlight()
_upkeep = threading.Lock()


def is_file(response: Any, environ: WSGIEnvironment) -> bool:
    """The server's `wsgi.file_wrapper`: wrapped, the server could not sendfile() it."""
    wrapper = environ.get("wsgi.file_wrapper")
    return isinstance(wrapper, type) and isinstance(response, wrapper)


class ClosingResponse:
    """A streamed response: the request ends when the server closes it."""

    def __init__(self, response: Iterable[bytes], done: Callable[[], None]) -> None:
        self._response = response
        self._done = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._response)

    def close(self) -> None:
        try:
            close = getattr(self._response, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


class FreezeHeapWhenWarm:
    """WSGI middleware: refreeze the heap on `is_refreeze_due`, when no other
    request runs (or at the next due point), and sweep every `sweep_every`."""

    def __init__(
        self, app: WSGIApp, every: int = REFREEZE_EVERY, sweep_every: int = SWEEP_EVERY
    ) -> None:
        self.app = app
        self.every = every
        self.sweep_every = sweep_every
        self._served = itertools.count(1)  # next() is atomic under the GIL
        self._pending = False  # a refreeze fell due and waits for a quiet moment

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        in_flight.enter()
        try:
            response = self.app(environ, start_response)
        except BaseException:
            in_flight.leave()
            raise
        if isinstance(response, (list, tuple)) or is_file(response, environ):
            self._finished()  # rendered, or a file for the server to send as is
            return response
        return ClosingResponse(response, self._finished)

    def _finished(self) -> None:
        alone = in_flight.leave() == 0
        served = next(self._served)
        due = is_refreeze_due(served, self.every)
        # A refreeze waits for a moment no other request runs, but never past
        # the next one due.
        if (due or self._pending) and (alone or (due and self._pending)):
            self._pending = not self._try(refreeze)
            return
        self._pending = self._pending or due
        if served % self.sweep_every == 0:
            self._try(sweep)

    def _try(self, upkeep: Callable[[], None]) -> bool:
        """Run `upkeep` unless another thread is at it (then skip this turn)."""
        if not _upkeep.acquire(blocking=False):
            return False
        try:
            upkeep()
        finally:
            _upkeep.release()
        return True
