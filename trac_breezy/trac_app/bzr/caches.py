"""Bounded, thread-safe caches shared by all requests of a Trac process.

Why this exists: Bazaar revisions never change, so what was read of one
(its metadata, its changes, the graph of a branch tip) can serve every later
request; but a long-running mod_wsgi daemon must not grow without bound, and
tests must be able to start from nothing.  Every process-wide cache of the
backend is made by :func:`process_cache`, so :func:`clear_caches` forgets
them all.  No Trac imports: the storage layer uses this.

A count of entries is no bound when entries differ in size by orders of
magnitude (the index of a 100-revision branch and of a 100,000-revision one,
the changes of a one-line fix and of an import), so a cache can also be
bounded by the total *weight* of its entries (``len(value)`` unless it is
given another measure: the revisions of an index, the changes of a
revision, ...): it then never holds more than `max_weight`, except that the
entry put last is always kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small thread-safe least-recently-used mapping, bounded in entries
    and, with `max_weight`, in the total `weight` of its values."""

    def __init__(self, size: int, max_weight: int = 0, weight: Callable[[Any], int] = len) -> None:
        self._size = size
        self._max_weight = max_weight
        self._weigh = weight if max_weight else lambda value: 0
        self._data: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}
        self.weight = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> V:
        weight = self._weigh(value)
        with self._lock:
            self.weight += weight - self._weights.get(key, 0)
            self._data[key], self._weights[key] = value, weight
            self._data.move_to_end(key)
            while len(self._data) > self._size or (
                self._max_weight and self.weight > self._max_weight and len(self._data) > 1
            ):
                oldest, _value = self._data.popitem(last=False)
                self.weight -= self._weights.pop(oldest)
        return value

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._weights.clear()
            self.weight = 0


_process_caches: list[LRU[Any, Any]] = []


def process_cache(
    size: int, max_weight: int = 0, weight: Callable[[Any], int] = len
) -> LRU[Any, Any]:
    """A new process-wide cache of at most `size` entries (and `max_weight`),
    cleared by `clear_caches`."""
    cache: LRU[Any, Any] = LRU(size, max_weight, weight)
    _process_caches.append(cache)
    return cache


def clear_caches() -> None:
    """Forget everything cached about branches (used by tests)."""
    for cache in _process_caches:
        cache.clear()
