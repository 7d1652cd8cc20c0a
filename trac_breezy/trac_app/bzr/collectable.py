"""Breezy repositories that Python's garbage collector could never free, made freeable.

Why this exists: every Bazaar pack repository (format 2a and the older pack
formats) keeps a parents provider from `vcsgraph`, a Rust extension:
``repo._unstacked_provider = CachingParentsProvider(
CallableToParentsProviderAdapter(repo._get_parent_map_no_fallbacks))``
(breezy/bzr/pack_repo.py).  Those Rust objects tell the collector nothing
about what they hold (no ``__traverse__``, vcsgraph 0.3.3), so the cycle
repository -> provider -> bound method -> repository looks referenced from
outside and is never collected: every opened repository, with its pack
indexes and their caches, stayed in memory for the life of the process
(~1 MB per Trac page of a 1,000-revision branch, ~10 repositories per
`brz branch` served; see bench/memory_probe.py).

`make_collectable` gives a repository an equivalent provider whose callable
reaches the repository through a weak reference, so no cycle passes through
Rust code and the repository is freed like any other Python object.  It is
safe at any point of a repository's life, also while another thread uses
it (the provider is replaced, not removed; the cache keeps its on/off
state).  `sweep` does it to every such repository the collector tracks
(frozen ones excepted): those opened by code we do not control (Breezy's
smart-server handlers).

No Trac imports: the storage layer and the process-wide heap upkeep
(`trac_breezy.trac_app.gc_freeze`) use this.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from typing import Any

from breezy.bzr.pack_repo import PackRepository
from vcsgraph.graph import CachingParentsProvider, CallableToParentsProviderAdapter

ParentMap = dict[Any, Any]

# Repositories already given a weak provider (a WeakSet keeps none alive).
_done: weakref.WeakSet[Any] = weakref.WeakSet()


def _weak_parent_map(repository: PackRepository) -> Callable[[Any], ParentMap]:
    """What Breezy's provider calls, reaching `repository` through a weak reference."""
    # The same method PackRepository.__init__ hands its provider: without
    # fallbacks when the format stacks, else the repository's own lookup.
    if repository._format.supports_external_lookups:
        name = "_get_parent_map_no_fallbacks"
    else:
        name = "get_parent_map"
    ref = weakref.ref(repository)

    def parent_map(keys: Any) -> ParentMap:
        target = ref()
        return {} if target is None else getattr(target, name)(keys)

    return parent_map


def make_collectable(repository: object) -> None:
    """Let the collector free `repository` (and its fallbacks) once unused."""
    if not isinstance(repository, PackRepository) or repository in _done:
        return
    old = repository.__dict__.get("_unstacked_provider")
    if old is not None:
        provider = CachingParentsProvider(
            CallableToParentsProviderAdapter(_weak_parent_map(repository))
        )
        if old.get_cached_map() is None:  # Breezy's repositories start disabled
            provider.disable_cache()
        repository._unstacked_provider = provider
    _done.add(repository)
    for fallback in getattr(repository, "_fallback_repositories", ()):
        make_collectable(fallback)


def _classes(base: type) -> set[type]:
    """`base` and its subclasses (the formats imported so far)."""
    found: set[type] = {base}
    todo: list[type] = [base]
    while todo:
        subclasses: list[type] = todo.pop().__subclasses__()
        for sub in subclasses:
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def sweep() -> int:
    """Make every pack repository the collector tracks collectable; how many were new.

    An instance refers to its class (the collector sees that reference), so
    the collector's own walk finds them: `gc.get_referrers` of the classes.
    Not `gc.get_objects()`: the list it returns also holds the tuples other
    threads are building at that moment, and CPython cannot finish a tuple
    that another reference holds (SystemError: bad argument to internal
    function, seen once in 243 pushes under bench/memory_probe.py).
    """
    classes = _classes(PackRepository)
    found = [o for o in gc.get_referrers(*classes) if type(o) in classes and o not in _done]
    for repository in found:
        make_collectable(repository)
    return len(found)
