"""Bounded, thread-safe caches shared by all requests of a Trac process.

Why this exists: Bazaar revisions never change, so what was read of one
(its metadata, its changes, the graph of a branch tip) can serve every later
request; but a long-running mod_wsgi daemon must not grow without bound, and
tests must be able to start from nothing.  Every process-wide cache of the
backend is made by :func:`process_cache`, so :func:`clear_caches` forgets
them all.  No Trac imports: the storage layer uses this.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small thread-safe least-recently-used mapping."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_process_caches: list[LRU[Any, Any]] = []


def process_cache(size: int) -> LRU[Any, Any]:
    """A new process-wide cache of at most `size` entries, cleared by `clear_caches`."""
    cache: LRU[Any, Any] = LRU(size)
    _process_caches.append(cache)
    return cache


def clear_caches() -> None:
    """Forget everything cached about branches (used by tests)."""
    for cache in _process_caches:
        cache.clear()
