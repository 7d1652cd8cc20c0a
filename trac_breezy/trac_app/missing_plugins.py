"""Plugins an old project asks for that this image does not have: named, not a traceback.

An environment from the Python 2 years enables components of plugins this
image lacks (`acct_mgr.* = enabled`, `tracrpc.*`, `tracbzr.*`) and carries
Python 2 plugins in its `plugins/` folder. Trac 1.6 says nothing about a
`[components]` rule that matches no component, skips an egg built for
another Python without a word (`pkg_resources.Environment` never lists it),
and logs a traceback for a `.py` plugin it cannot compile. The project
serves, but without what it had, and nobody is told why.

`notices(env)` says it in one line each, with what to do; the start-up
checks log the same lines, and `MissingPluginNotices` shows them on the
project's admin pages to its TRAC_ADMINs. The rules are matched as Trac
matches them (`Environment.is_component_enabled`: a rule names a component
or a dotted prefix of one, lower case, `.*` stripped, Trac's `as_bool`), and
eggs are judged by their file name as `pkg_resources` judges them.
"""

from __future__ import annotations

import functools
import glob
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pkg_resources
from trac.core import Component, ComponentMeta, implements
from trac.env import Environment
from trac.util import as_bool
from trac.web.api import IRequestFilter, Request
from trac.web.chrome import add_warning

PLUGINS_HELP = "install a Python 3 release of the plugin (docs/plugins.md)"
THIS_PYTHON = "{}.{}".format(*sys.version_info)


def _rule_name(option: str) -> str:
    """Trac's key for a `[components]` rule (Environment._component_rules)."""
    return option.rstrip(".*").lower()


def missing_rules(rules: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """The enabled rules of a `[components]` section that match no known component."""
    prefixes: set[str] = set()
    for name in known:
        parts = name.lower().split(".")
        prefixes.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return [
        option
        for option, value in rules.items()
        if as_bool(value) and _rule_name(option) and _rule_name(option) not in prefixes
    ]


def python2_plugins(plugins_dir: Path) -> list[tuple[str, str]]:
    """Eggs built for another Python or platform and `.py` files that do not
    compile under this Python, in a plugins folder: (file name, why)."""
    try:
        names = sorted(os.listdir(plugins_dir))
    except OSError:  # no such folder, or not ours to read: Trac loads nothing there either
        return []
    found = []
    this_python = pkg_resources.Environment([])
    for name in names:
        if name.lower().endswith(".egg"):
            dist = pkg_resources.Distribution.from_filename(str(plugins_dir / name))
            if not this_python.can_add(dist):
                built_for = f"Python {dist.py_version}" if dist.py_version else "another Python"
                if dist.py_version == THIS_PYTHON:
                    built_for = f"the platform {dist.platform}"
                found.append((name, f"an egg built for {built_for}, not {THIS_PYTHON}"))
    for path in sorted(glob.glob(os.path.join(plugins_dir, "*.py"))):  # Trac's own glob
        error = _compile_error(path)
        if error:
            found.append((os.path.basename(path), error))
    return found


def _compile_error(path: str) -> str | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return _compiled(path, info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=256)
def _compiled(path: str, mtime_ns: int, size: int) -> str | None:
    """Why the file does not compile here (cached while it is unchanged)."""
    try:
        with open(path, "rb") as source:
            compile(source.read(), path, "exec", dont_inherit=True)
    except SyntaxError as error:
        return f"does not compile under Python {THIS_PYTHON} (line {error.lineno}: {error.msg})"
    except (RecursionError, MemoryError) as error:  # Trac's loader catches them too
        return f"does not compile under Python {THIS_PYTHON} ({error})"
    except (OSError, ValueError) as error:
        return f"cannot be read as Python source ({error})"
    return None


def notices(env: Environment) -> list[str]:
    """One line for each rule and plugin of the Trac environment `env` that
    this image cannot honour, with what to do. Cheap on an opened env."""
    known = [f"{c.__module__}.{c.__name__}" for c in list(ComponentMeta._components)]
    rules = dict(env.config.options("components"))
    lines = [
        f"[components] {option} = {rules[option]}: no component of this image matches "
        f"(a plugin it does not have); {PLUGINS_HELP}, or remove the rule"
        for option in missing_rules(rules, known)
    ]
    folders = [("plugins/", Path(env.plugins_dir))]
    shared = env.shared_plugins_dir
    if shared:
        folders.append((f"{shared}/", Path(shared)))
    for label, folder in folders:
        lines += [
            f"{label}{name}: {why}, so Trac skips it; {PLUGINS_HELP}, or remove the file"
            for name, why in python2_plugins(folder)
        ]
    return lines


class MissingPluginNotices(Component):
    """Shows `notices()` on the project's admin pages, to its TRAC_ADMINs."""

    implements(IRequestFilter)

    # IRequestFilter methods

    def pre_process_request(self, req: Request, handler: object) -> object:
        return handler

    def post_process_request(
        self, req: Request, template: str | None, data: dict[str, object], metadata: object
    ) -> tuple[str | None, dict[str, object], object]:
        path = req.path_info
        admin_page = path == "/admin" or path.startswith("/admin/")
        if template and admin_page and "TRAC_ADMIN" in req.perm:
            for line in notices(self.env):
                add_warning(req, line)  # Trac keeps each message once a page
        return template, data, metadata
