"""Every Trac project inherits the shared trac.ini (`[inherit] file`), mounted ones too.

The entrypoint writes the shared file (`container/trac_ini.py`) at each start;
new projects inherit it from creation (`projects.py`). A mounted project gets
`[inherit] file` at start, appended when it inherits other files already (the
files it named first keep precedence).

Inheriting is not enough on its own: a project's own value wins over the
shared one (Trac's rule), and `trac-admin initenv` without `--inherit` writes
every option's default into the project, `smtp_enabled = disabled` included.
So for each option the shared file sets, a value in the project's trac.ini
that is Trac's own default is removed (it was written out, not chosen); a
value that differs from Trac's default was chosen by someone and is kept.
With TRAC_BASE_URL set, a project without a `[trac] base_url` gets
TRAC_BASE_URL/NAME, so mail sent for a push links to the right place.

The access rules (AUTHZ_FILE) are the exception to "the project's own value
wins": a project must not show in Trac what brz refuses. Its own `[svn]
authz_file` is removed (there is one rule file), and when the permission
policies it reads (its own, or a file it inherits first) do not start with
AuthzSourcePolicy and AuthzChangesetPolicy (`trac_ini.AUTHZ_POLICIES`), its
own `[trac] permission_policies` gets them first, the rest kept in their
order. When AUTHZ_FILE is unset again, those left in a project's own list
without any `[svn] authz_file` are taken out (Trac would fail every source
page without one).

The same holds for what keeps one project's admins inside it (issue 19):
`[bzr] tree_root` and `[versioncontrol] allowed_repository_dir_prefixes`
(BZR_ROOT) and `[bzr] anonymous_read` (BZR_ANONYMOUS_READ=false) are removed
from a project's own trac.ini, PrivateSourcePolicy goes first in its
policies while anonymous reads are off, and its own `[components]` rules
that would turn Admin > Plugins or Logging back on are removed (Trac's most
specific rule wins, so only rules naming those components matter; the Trac
daemon refuses them anyway, trac_app/locked_components.py).

Each project that changed gets one log line saying what changed; a project
that keeps values of its own over shared ones gets one line saying which, at
every start. trac.ini is saved the way Trac saves it (`trac-admin config
set` does the same: options sorted, comments not kept).
"""

from __future__ import annotations

import configparser
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from trac_breezy import log, one_line
from trac_breezy.admin.trac_env import list_projects
from trac_breezy.container import paths
from trac_breezy.container.checks import turns_on_locked
from trac_breezy.container.settings import Settings
from trac_breezy.container.trac_ini import (
    AUTHZ_POLICIES,
    PRIVATE_POLICY,
    first_policies,
    policies_list,
    put_first,
)

# Options the rule file needs in every project: the project's own value never wins.
ENFORCED = {
    ("svn", "authz_file"): "AUTHZ_FILE",
    # A repository's place in the tree, and where repositories may be: BZR_ROOT.
    ("bzr", "tree_root"): "BZR_ROOT",
    ("versioncontrol", "allowed_repository_dir_prefixes"): "BZR_ROOT",
    ("bzr", "anonymous_read"): "BZR_ANONYMOUS_READ",
}
# Options a project may keep, checked again once it is saved (`rule_policy_change`).
POLICIES = ("trac", "permission_policies")


@dataclass
class Outcome:
    """What updating one project did."""

    changes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def line(self, project: str) -> str | None:
        said = [*self.changes]
        if self.kept:
            said.append(
                "keeps its own " + ", ".join(self.kept) + " over the shared values (Trac's rule)"
            )
        return f"{project}: " + "; ".join(said) if said else None


def shared_options(global_ini: Path) -> dict[tuple[str, str], str]:
    """(section, option) -> value of the shared file, [components] aside (no defaults)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(global_ini, encoding="utf-8")
    return {
        (section, option): value
        for section in parser.sections()
        if section != "components"
        for option, value in parser.items(section)
    }


def register_options() -> None:
    """Import Trac and every installed plugin, so Trac knows each option's default."""
    from importlib.metadata import entry_points

    import trac.env  # noqa: F401 - Trac's core options

    import trac_breezy.trac_app.mail  # noqa: F401 - our mail options

    for entry in entry_points(group="trac.plugins"):
        try:
            entry.load()
        except Exception:  # noqa: S112 - a broken plugin's options stay unknown (kept)
            continue


def is_trac_default(section: str, option: str, value: str) -> bool:
    from trac.config import Option

    declared = Option.get_registry().get((section, option))
    return declared is not None and declared.normalize(value) == declared.normalize(
        declared.default
    )


def same(section: str, option: str, one: str, other: str) -> bool:
    from trac.config import Option

    declared = Option.get_registry().get((section, option))
    if declared is None:
        return one.strip() == other.strip()
    normalized: tuple[str, str] = (declared.normalize(one), declared.normalize(other))
    return normalized[0] == normalized[1]


def update_project(
    env_path: Path, global_ini: Path, shared: dict[tuple[str, str], str], base_url: str
) -> Outcome:
    """Make one project inherit `global_ini` and see the shared values."""
    from trac.config import Configuration

    config = Configuration(str(env_path / "conf" / "trac.ini"))
    own = config.parser
    outcome = Outcome()
    files = [f.strip() for f in own.get("inherit", "file", fallback="").split(",") if f.strip()]
    if str(global_ini) not in files:
        config.set("inherit", "file", ", ".join([*files, str(global_ini)]))
        outcome.changes.append(f"inherits {global_ini} now")
    removed = []
    for (section, option), value in shared.items():
        if not own.has_option(section, option):
            continue
        mine = own.get(section, option)
        if same(section, option, mine, value):
            continue
        if is_trac_default(section, option, mine):
            config.remove(section, option)
            removed.append(f"[{section}] {option}")
        elif (section, option) in ENFORCED:
            config.remove(section, option)
            variable = ENFORCED[(section, option)]
            outcome.changes.append(f"removed its own [{section}] {option} ({variable} wins)")
        elif (section, option) != POLICIES:  # kept, but see rule_policy_change
            outcome.kept.append(f"[{section}] {option}")
    if removed:
        outcome.changes.append(
            "removed Trac's defaults that hid the shared values: " + ", ".join(removed)
        )
    unlocked = locked_rules(own)
    for rule in unlocked:
        config.remove("components", rule)
    if unlocked:
        outcome.changes.append(
            "removed its own [components] "
            + ", ".join(unlocked)
            + ": those admin panels stay off in every project (docs/plugins.md)"
        )
    if base_url and not own.get("trac", "base_url", fallback=""):
        url = f"{base_url.rstrip('/')}/{env_path.name}"
        config.set("trac", "base_url", url)
        outcome.changes.append(f"[trac] base_url = {url} (from TRAC_BASE_URL)")
    if outcome.changes:
        config.save()
    change = rule_policy_change(
        env_path,
        authz_on=("svn", "authz_file") in shared,
        private_on=("bzr", "anonymous_read") in shared,
    )
    if change:
        outcome.changes.append(change)
    return outcome


def locked_rules(own: configparser.RawConfigParser) -> list[str]:
    """The project's own `[components]` rules that would turn a locked panel back on
    (`checks.LOCKED_COMPONENTS`), whatever their value: the shared `disabled` must win."""
    if not own.has_section("components"):
        return []
    return [rule for rule in own.options("components") if turns_on_locked(rule)]


def rule_policy_change(env_path: Path, authz_on: bool, private_on: bool = False) -> str | None:
    """Put our policies first in what the project reads (AuthzSourcePolicy with
    AUTHZ_FILE, PrivateSourcePolicy with BZR_ANONYMOUS_READ=false), or take
    out those left without their setting; what changed, or None.

    Reads the saved trac.ini again, so the policies are those Trac will use:
    the project's own, a file it inherits first, or the shared file's.
    """
    from trac.config import Configuration

    config = Configuration(str(env_path / "conf" / "trac.ini"))
    section, option = POLICIES
    said = []
    own = policies_list(config.parser.get(section, option, fallback=""))
    no_rules = not authz_on and not config.get("svn", "authz_file")
    stale = [
        name
        for name in own
        if (name in AUTHZ_POLICIES and no_rules) or (name == PRIVATE_POLICY and not private_on)
    ]
    if stale:
        rest = [p for p in own if p not in stale]
        if rest:
            config.set(section, option, ", ".join(rest))
        else:
            config.remove(section, option)
        why = "AUTHZ_FILE is unset and no [svn] authz_file names rules"
        if PRIVATE_POLICY in stale:
            why = "BZR_ANONYMOUS_READ is true" + ("; " + why if len(stale) > 1 else "")
        said.append(f"took {', '.join(stale)} out of its own [{section}] {option}: {why}")
    first = first_policies(authz_on, private_on)
    policies = policies_list(config.get(section, option))
    if first and policies[: len(first)] != list(first):
        config.set(section, option, ", ".join(put_first(policies, first)))
        why = " and ".join(["BZR_ANONYMOUS_READ=false"] * private_on + ["AUTHZ_FILE"] * authz_on)
        said.append(f"put {', '.join(first)} first in its own [{section}] {option} ({why})")
    if not said:
        return None
    config.save()
    return "; ".join(said)


def update_all(
    loaded: Settings, global_ini: Path = paths.TRAC_GLOBAL_INI, skip: Collection[str] = ()
) -> None:
    """At start, as the servers' user: every project (but those in `skip`,
    which the start does not serve) inherits the shared file."""
    parent = loaded.trac_env_parent_dir
    projects = [name for name in list_projects(parent) if name not in skip]
    if not projects:
        return
    register_options()
    shared = shared_options(global_ini)
    for name in projects:
        try:
            outcome = update_project(parent / name, global_ini, shared, loaded.trac_base_url)
        except Exception as error:  # Trac raises anything; the project is left as it was
            log(
                f"{name}: could not make it inherit {global_ini} ({one_line(error)}); it does "
                "not see mail, plugins, access rules or TRAC_INI__ settings until trac.ini can "
                "be written"
            )
            continue
        line = outcome.line(name)
        if line:
            log(line)
