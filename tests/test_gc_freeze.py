"""The heap freezing around Trac's per-request collection (trac_breezy/trac_app/gc_freeze.py)."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from trac_breezy.trac_app.gc_freeze import FreezeHeapWhenWarm, is_refreeze_due, refreeze


@pytest.fixture(autouse=True)
def unfrozen_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()


class Cycle:
    """An object in a reference cycle: only the collector can free it."""

    def __init__(self) -> None:
        self.me = self


def app_that_keeps(kept: list[object]):
    """A WSGI app that leaves a long-lived object behind at each request, as
    Trac does when it opens an environment or compiles a template."""

    def app(environ, start_response):
        kept.append(Cycle())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def test_refreeze_schedule_doubles_then_repeats() -> None:
    due = [n for n in range(1, 5000) if is_refreeze_due(n)]
    assert due == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3072, 4096]
    assert [n for n in range(1, 40) if is_refreeze_due(n, every=8)] == [1, 2, 4, 8, 16, 24, 32]


def test_first_request_freezes_what_it_left_behind() -> None:
    kept: list[object] = []
    app = FreezeHeapWhenWarm(app_that_keeps(kept))
    assert gc.get_freeze_count() == 0

    assert app({}, lambda status, headers: None) == [b"ok"]

    assert gc.get_freeze_count() > 0
    tracked = {id(o) for o in gc.get_objects()}
    assert id(kept[0]) not in tracked, "the object made by the request was not frozen"


def test_full_collection_skips_frozen_objects() -> None:
    kept = [Cycle() for _ in range(20_000)]
    refreeze()
    assert len(gc.get_objects()) < len(kept), "frozen objects still tracked by collections"
    assert gc.get_freeze_count() >= len(kept)


def test_requests_between_refreezes_stay_unfrozen_until_due() -> None:
    kept: list[object] = []
    app = FreezeHeapWhenWarm(app_that_keeps(kept), every=4)
    for _ in range(3):  # refrozen after requests 1 and 2, not 3
        app({}, lambda status, headers: None)
    tracked = {id(o) for o in gc.get_objects()}
    assert id(kept[1]) not in tracked
    assert id(kept[2]) in tracked

    app({}, lambda status, headers: None)  # request 4: due
    tracked = {id(o) for o in gc.get_objects()}
    assert id(kept[2]) not in tracked and id(kept[3]) not in tracked


def test_garbage_that_was_frozen_is_freed_at_the_next_refreeze() -> None:
    dropped = Cycle()
    alive = weakref.ref(dropped)
    refreeze()
    del dropped
    gc.collect()
    assert alive() is not None, "a frozen cycle should outlive a plain collection"

    refreeze()
    assert alive() is None


class Running:
    """A request of `app` running in another thread until `finish()` (the
    other app of the daemon, or a slow page) that holds a Cycle meanwhile."""

    def __init__(self, app: FreezeHeapWhenWarm) -> None:
        self.held: weakref.ref | None = None
        self._started, self._finish = threading.Event(), threading.Event()

        def slow(environ, start_response):
            held = Cycle()
            self.held = weakref.ref(held)
            self._started.set()
            self._finish.wait(10)
            start_response("200 OK", [])
            return [b"ok"]  # `held` is dropped here: garbage, in a cycle

        app.app = slow
        self._thread = threading.Thread(target=app, args=({}, lambda status, headers: None))
        self._thread.start()
        self._started.wait(10)

    def finish(self) -> None:
        self._finish.set()
        self._thread.join(10)


def warmed_up(requests: int, every: int = 1 << 20) -> FreezeHeapWhenWarm:
    """A middleware that has served `requests` requests already."""
    app = FreezeHeapWhenWarm(app_that_keeps([]), every=every, sweep_every=1 << 20)
    for _ in range(requests):
        app({}, lambda status, headers: None)
    return app


def test_objects_of_a_request_running_elsewhere_are_not_frozen() -> None:
    """A refreeze waits while another request runs: what that request drops
    is garbage a plain collection frees, not frozen garbage."""
    other = Running(warmed_up(2))  # its request is its 3rd: no refreeze due then
    kept: list[object] = []
    app = FreezeHeapWhenWarm(app_that_keeps(kept))
    app({}, lambda status, headers: None)  # request 1: due, but `other` runs
    assert id(kept[0]) in {id(o) for o in gc.get_objects()}, "frozen while another request ran"

    other.finish()
    gc.collect()  # Trac's collection after its next request
    assert other.held is not None and other.held() is None, "dropped but kept frozen"


def test_a_refreeze_put_off_is_done_when_no_other_request_runs() -> None:
    kept: list[object] = []
    app = FreezeHeapWhenWarm(app_that_keeps(kept), every=1 << 20)
    other = Running(warmed_up(2))
    app({}, lambda status, headers: None)  # due, put off
    other.finish()
    app({}, lambda status, headers: None)  # request 2: quiet now
    tracked = {id(o) for o in gc.get_objects()}
    assert id(kept[0]) not in tracked and id(kept[1]) not in tracked


def test_a_refreeze_put_off_is_forced_when_the_next_one_falls_due() -> None:
    """Under unbroken load the heap is still frozen (at most one due point late)."""
    kept: list[object] = []
    app = FreezeHeapWhenWarm(app_that_keeps(kept), every=4)
    other = Running(warmed_up(2))
    try:
        app({}, lambda status, headers: None)  # 1: due, put off
        app({}, lambda status, headers: None)  # 2: due again: forced
        tracked = {id(o) for o in gc.get_objects()}
        assert id(kept[0]) not in tracked and id(kept[1]) not in tracked
    finally:
        other.finish()


def test_a_streamed_response_runs_until_it_is_closed() -> None:
    """A response the server iterates after the app returned still counts as
    running (no refreeze meanwhile), and closing it closes the app's."""
    closed: list[bool] = []

    class Body:
        def __iter__(self):
            yield b"chunk"

        def close(self) -> None:
            closed.append(True)

    streaming = FreezeHeapWhenWarm(lambda environ, start_response: Body())
    response = streaming({}, lambda status, headers: None)
    kept: list[object] = []
    FreezeHeapWhenWarm(app_that_keeps(kept))({}, lambda status, headers: None)
    assert id(kept[0]) in {id(o) for o in gc.get_objects()}, "frozen while a body streamed"

    assert list(response) == [b"chunk"]
    response.close()
    assert closed == [True]
    assert gc.get_freeze_count() > 0, "the put-off refreeze ran when the stream ended"


def test_a_file_for_the_server_to_send_is_handed_on_as_it_is() -> None:
    """Trac's send_file returns the server's wsgi.file_wrapper: left unwrapped,
    so that mod_wsgi can still sendfile() it."""

    class FileWrapper:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __iter__(self):
            yield self.data

    sent = FileWrapper(b"attachment")
    app = FreezeHeapWhenWarm(lambda environ, start_response: sent)
    assert app({"wsgi.file_wrapper": FileWrapper}, lambda status, headers: None) is sent
