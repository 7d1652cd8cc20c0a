"""Where the storage layer's errors become Trac's.

Why this exists: `storage` raises `BzrStorageError` and knows nothing of
Trac, but Trac shows a `TracError` as a page with its message (and treats an
`InvalidRepository` as a broken repository) while any other exception is an
internal error.  So every entry point Trac calls on a repository, node or
changeset translates: the classes are decorated with
:func:`translates_storage_errors`, which wraps ``__init__`` and every public
method and property.  A public method that returns an iterator must be a
generator function (``yield from``), so errors raised while the caller
iterates are translated too.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from trac.core import TracError
from trac.versioncontrol.api import InvalidRepository

from trac_breezy.trac_app.bzr.storage import BzrStorageError, CannotOpenBranch

C = TypeVar("C", bound=type)


def trac_error(error: BzrStorageError) -> TracError:
    """The Trac error to raise for `error`, with the same message."""
    if isinstance(error, CannotOpenBranch):
        return InvalidRepository(str(error))
    return TracError(str(error))


def _translating(func: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            try:
                return (yield from func(*args, **kwargs))
            except BzrStorageError as e:
                raise trac_error(e) from e

        return generator

    @functools.wraps(func)
    def function(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BzrStorageError as e:
            raise trac_error(e) from e

    return function


def translates_storage_errors(cls: C) -> C:
    """Make ``__init__`` and the public methods and properties of `cls` raise Trac errors."""
    for name, value in list(vars(cls).items()):
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(value, property) and value.fget is not None:
            getter = _translating(value.fget)
            setattr(cls, name, property(getter, value.fset, value.fdel, value.__doc__))
        elif inspect.isfunction(value):
            setattr(cls, name, _translating(value))
    return cls
