"""The heap freezing around Trac's per-request collection (trac_breezy/trac_app/gc_freeze.py)."""

from __future__ import annotations

import gc
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
