"""What older Tracs and their hosts left in a mounted project, found and repaired.

A project moved from a Python 2 host (docs/migration.md) often does not open
in Trac 1.6 for reasons that have nothing to do with its data:

- its trac.ini repeats an option or a section, has a byte-order mark or is
  not UTF-8 (`ini_repair`);
- it logs to a file in `log/`, a folder hosts rarely back up, to a Windows
  path, to the Windows event log, or to a syslog socket the container lacks;
- it was served by the TracBzr plugin (`tracbzr.* = enabled`, repositories of
  type `bzr`), whose place this image's Bazaar backend takes.

`plan` finds all of that without writing anything (the dry run prints it);
`carry_out` makes the changes at start: trac.ini is copied beside itself
first (`trac.ini.repair-<time>.bak`, as Trac's own upgrades name their
copies), and one log line per project says what changed. What cannot be
repaired here (a repository at a path of the old host, a database that needs
Trac's upgrade) is reported too, and left to `upgrade` or to a person.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import stat
from dataclasses import dataclass, field
from pathlib import Path

from trac_breezy.admin import ini_repair
from trac_breezy.admin.findings import Action, Finding
from trac_breezy.admin.ini_repair import IniError, IniText, repaired
from trac_breezy.admin.trac_env import COMPONENTS
from trac_breezy.admin.upgrade import timestamp
from trac_breezy.trac_app import missing_plugins

INI = Path("conf", "trac.ini")
SYSLOG_SOCKET = "/dev/log"
WINDOWS_LOGS = ("eventlog", "winlog", "nteventlog")
WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]|\\")
# Trac's truth values for `[components]` rules (trac.env.Environment.is_component_enabled).
ENABLED = ("enabled", "on", "true", "yes", "1")
OUR_PREFIX = "trac_breezy."


@dataclass
class Plan:
    """What start-up will do to one project, found without writing anything."""

    name: str
    findings: list[Finding] = field(default_factory=list)
    ini: IniText | None = None  # trac.ini to write, when something in it changes
    changes: list[str] = field(default_factory=list)  # what changes in trac.ini
    folders: list[Path] = field(default_factory=list)  # to make (a missing log/)
    refused: str | None = None  # why the project cannot be served as it is

    def add(self, action: Action, text: str) -> None:
        self.findings.append(Finding(f"project {self.name}", action, text))


def plan(env_path: Path, bzr_root: Path, current_version: int | None = None) -> Plan:
    """Everything start-up will repair in `env_path`, and what it will leave."""
    result = Plan(env_path.name)
    try:
        raw = ini_repair.read(env_path / INI)
        ini, result.changes = repaired(raw)
    except (OSError, IniError) as error:
        result.refused = f"{INI}: {' '.join(str(error).split())}"
        result.add(Action.REFUSE, f"{result.refused}; fix it by hand, then restart")
        return result
    result.changes += logging_repairs(ini, env_path, result.folders)
    result.changes += tracbzr_repairs(ini)
    if result.changes:
        result.ini = ini
        result.add(Action.REPAIR, f"{INI}: " + "; ".join(result.changes))
    for folder in result.folders:
        result.add(Action.REPAIR, f"{folder.relative_to(env_path)}/ is missing: made empty")
    for text in repository_notes(ini, env_path, bzr_root) + plugin_notes(ini, env_path):
        result.add(Action.SKIP, text)
    version = database_version(env_path, ini)
    if version is not None and current_version is not None and version < current_version:
        result.add(
            Action.UPGRADE,
            f"database version {version}, Trac 1.6 needs {current_version}: "
            "`trac-admin upgrade` after a hotcopy",
        )
    return result


def carry_out(env_path: Path, planned: Plan) -> str | None:
    """Make the planned repairs; the log line saying what changed, or None."""
    said = []
    for folder in planned.folders:
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        said.append(f"made {folder.relative_to(env_path)}/")
    if planned.ini is not None:
        ini_path = env_path / INI
        copy = ini_path.with_name(f"{ini_path.name}.repair-{timestamp()}.bak")
        shutil.copy2(ini_path, copy)
        write_like(ini_path, planned.ini.render())
        said.append(f"repaired {INI} ({'; '.join(planned.changes)}); the old one is {copy.name}")
    return f"{planned.name}: " + "; ".join(said) if said else None


def write_like(path: Path, text: str) -> None:
    """Replace `path` with `text`, keeping its mode (readers see old or new)."""
    partial = path.with_name(f".{path.name}.repairing")
    partial.write_text(text, encoding="utf-8")
    os.chmod(partial, stat.S_IMODE(path.stat().st_mode))
    os.replace(partial, path)


def logging_repairs(ini: IniText, env_path: Path, folders: list[Path]) -> list[str]:
    """Logging that cannot work in the container goes to stderr; a missing
    log/ folder of the project is made."""
    kind = (ini.get("logging", "log_type") or "none").lower()
    if kind in WINDOWS_LOGS:
        return [to_stderr(ini, "the Windows event log is not here")]
    if kind in ("syslog", "unix") and not is_socket(SYSLOG_SOCKET):
        return [to_stderr(ini, f"there is no syslog socket {SYSLOG_SOCKET} in the container")]
    if kind != "file":
        return []
    said = []
    name = ini.get("logging", "log_file") or "trac.log"
    if WINDOWS_PATH.search(name):
        ini.set("logging", "log_file", "trac.log")
        said.append(f"[logging] log_file {name} is a Windows path: trac.log in log/")
        name = "trac.log"
    path = Path(name) if os.path.isabs(name) else env_path / "log" / name
    folder = path.parent
    if folder.is_dir():
        if not os.access(folder, os.W_OK):
            said.append(to_stderr(ini, f"{folder} cannot be written"))
    elif folder.is_relative_to(env_path) and not os.path.lexists(folder):
        folders.append(folder)
    else:
        said.append(to_stderr(ini, f"{folder} does not exist in the container"))
    return said


def to_stderr(ini: IniText, why: str) -> str:
    ini.set("logging", "log_type", "stderr")
    return f"[logging] log_type = stderr ({why}; the container's log has it)"


def is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def repository_types(ini: IniText) -> set[str]:
    types = {
        ini.get("trac", "repository_type"),
        ini.get("versioncontrol", "default_repository_type"),
    }
    types |= {
        ini.get("repositories", o) for o in ini.options("repositories") if o.endswith(".type")
    }
    return {t.strip().lower() for t in types if t}


def tracbzr_repairs(ini: IniText) -> list[str]:
    """Where TracBzr served Bazaar, this image's backend does.

    TracBzr registered the repository type `bzr`, as this image's backend
    does, so repositories keep their type and place; only the components
    change. A project that names our components itself is left as it says.
    """
    rules = [o for o in ini.options("components") if o.split(".")[0] == "tracbzr"]
    enabled = [r for r in rules if (ini.get("components", r) or "").lower() in ENABLED]
    uses_bzr = "bzr" in repository_types(ini)
    if not enabled and not uses_bzr:
        return []
    if any(o.startswith(OUR_PREFIX) or o == "trac_breezy" for o in ini.options("components")):
        return []
    for rule in rules:
        ini.remove("components", rule)
    for component in COMPONENTS:
        ini.set("components", component, "enabled")
    was = f"TracBzr's {', '.join(rules)}" if rules else "repositories of type bzr"
    return [f"{was}: this image's Bazaar backend enabled ({', '.join(COMPONENTS)})"]


def repository_dirs(ini: IniText) -> dict[str, str]:
    """Each repository's directory by name ("" the default), in either place
    an old Trac kept it (`[trac] repository_dir` until Trac's upgrade moves it)."""
    dirs = {}
    old = ini.get("trac", "repository_dir")
    if old:
        dirs[""] = old
    for option in ini.options("repositories"):
        if option.endswith(".dir"):
            dirs[option[: -len(".dir")]] = ini.get("repositories", option) or ""
    return {name: value for name, value in dirs.items() if value}


def repository_notes(ini: IniText, env_path: Path, bzr_root: Path) -> list[str]:
    """Repositories this container cannot show, and what to do about each."""
    notes = []
    for name, directory in sorted(repository_dirs(ini).items()):
        label = f"repository {name or '(default)'}"
        fix = (
            f"mount it there, or point Trac at its place here: `trac-admin "
            f"{env_path} repository set {name or '(default)'} dir NEW_DIR`"
        )
        if WINDOWS_PATH.search(directory):
            notes.append(f"{label} is at {directory}, a Windows path: not shown; {fix}")
        elif not os.path.isdir(directory):
            notes.append(f"{label} is at {directory}, which is not in the container: {fix}")
        elif not Path(os.path.realpath(directory)).is_relative_to(os.path.realpath(bzr_root)):
            notes.append(
                f"{label} is at {directory}, outside BZR_ROOT={bzr_root}: not shown; "
                "move the branches into the tree (docs/migration.md)"
            )
    return notes


def known_components() -> list[str]:
    """Every component Trac's loader finds in the image: each `trac.plugins`
    entry point imported, as `trac.loader.load_eggs` does (once per process)."""
    from importlib.metadata import entry_points

    from trac.core import ComponentMeta

    for entry in entry_points(group="trac.plugins"):
        try:
            entry.load()
        except Exception:  # noqa: S112 - Trac logs and skips such a plugin, too
            continue
    return [f"{c.__module__}.{c.__name__}" for c in list(ComponentMeta._components)]


def plugin_notes(ini: IniText, env_path: Path) -> list[str]:
    """Components the project enables that this image lacks, and Python 2
    plugins in its plugins/ (the lines its admin pages show, too:
    trac_app/missing_plugins.py). A component of a single-file plugin in
    plugins/ counts as there: it is only known once Trac loads the file."""
    own = {p.stem.lower() for p in (env_path / "plugins").glob("*.py")}
    rules = {o: ini.get("components", o) or "" for o in ini.options("components")}
    rules = {o: v for o, v in rules.items() if o.split(".")[0] not in own}
    notes = [
        f"[components] {rule}: no component of this image matches (a plugin it does not "
        f"have); {missing_plugins.PLUGINS_HELP}, or remove the rule"
        for rule in missing_plugins.missing_rules(rules, known_components())
    ]
    notes += [
        f"plugins/{name}: {why}, so Trac skips it; {missing_plugins.PLUGINS_HELP}"
        for name, why in missing_plugins.python2_plugins(env_path / "plugins")
    ]
    return notes


def database_version(env_path: Path, ini: IniText) -> int | None:
    """The project's database version, read without Trac (which would write its
    log): SQLite only; None for other databases (checked at start)."""
    uri = ini.get("trac", "database") or "sqlite:db/trac.db"
    if not uri.startswith("sqlite:"):
        return None
    path = Path(uri[len("sqlite:") :])
    path = path if path.is_absolute() else env_path / path
    # as_uri quotes what a URI would read otherwise: in a project named "C#",
    # "#..." (with "?mode=ro") was cut off, and SQLite made the file ".../C".
    uri = f"{path.absolute().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute("SELECT value FROM system WHERE name = 'database_version'").fetchone()
    except (sqlite3.Error, ValueError):  # ValueError: a NUL in the path
        return None
    return int(row[0]) if row and str(row[0]).isdecimal() else None  # what int() reads
