"""WSGI middleware around Trac: freeze the warm heap, so Trac's collection
after every request stays cheap.

Trac's `dispatch_request` ends every request with a full `gc.collect()`
(trac/web/main.py, to break reference cycles the request left behind). A
full collection walks every container object in the process: Trac's and
Breezy's modules, each project's components, compiled templates; about
60,000 objects in one of our daemon processes, which makes it 20-36 ms per
request, more than rendering the page itself. Profiled with py-spy under wrk
(2 daemon processes x 15 threads, wiki page): 79 % of the time the GIL was
held went to that one call.

Python can take objects out of the collector's way: `gc.freeze()` moves
every object tracked at that moment into a permanent generation that
collections skip. So once a process is warm, the objects that live as long
as it does are frozen, and Trac's per-request collection only walks what the
requests made since: it still breaks every cycle a request leaves behind.

Freezing is redone now and then (after 1, 2, 4, ... 1024 requests, then
every 1024), each time unfreezing, collecting and freezing again, because:

* warm-up is gradual: a project's first ticket page compiles templates its
  first wiki page did not need, and a new project makes a new environment;
* an object that was frozen and later dropped is only reclaimed by a
  collection that sees it (for objects in reference cycles, such as an
  environment Trac reloads after trac.ini changed, or a request that was in
  flight in another thread at the moment of freezing). Redoing it every
  1024 requests bounds how long such garbage stays.

A re-freeze costs one full collection (the 20-36 ms above), at most once per
1024 requests after warm-up. Trac's own code is left as it is (no patching
of `trac.web.main.gc`): its collection after every request still runs.
"""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: After warm-up, the heap is frozen again every this many requests.
REFREEZE_EVERY = 1024


def is_refreeze_due(served: int, every: int = REFREEZE_EVERY) -> bool:
    """True after request 1, 2, 4, ... `every`, then after every `every` more."""
    if served < every:
        return served & (served - 1) == 0
    return served % every == 0


def refreeze() -> None:
    """Unfreeze, collect everything that died, freeze what is left."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class FreezeHeapWhenWarm:
    """WSGI middleware that refreezes the process's heap on `is_refreeze_due`."""

    def __init__(self, app: WSGIApp, every: int = REFREEZE_EVERY) -> None:
        self.app = app
        self.every = every
        self._served = itertools.count(1)  # next() is atomic under the GIL
        self._refreezing = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        response = self.app(environ, start_response)
        # One thread at a time; a thread that finds another one busy at it
        # skips its turn rather than wait.
        if is_refreeze_due(next(self._served), self.every) and self._refreezing.acquire(
            blocking=False
        ):
            try:
                refreeze()
            finally:
                self._refreezing.release()
        return response
