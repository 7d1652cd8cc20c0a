"""The trac.ini every Trac project inherits, made from the environment at each start.

Trac reads each project's `conf/trac.ini`, and a project whose trac.ini says
`[inherit] file = PATH` reads PATH too, for every option the project does not
set itself (Trac's rule: the project's own value wins). So the settings that
concern every project (mail, access rules, plugins, components) and any other Trac option
(`TRAC_INI__<section>__<option>`) are written into one generated file,
`paths.TRAC_GLOBAL_INI`, instead of into each project: new projects inherit
it from creation, mounted ones get the `[inherit]` line at start
(`admin/global_config.py`), and changing a variable needs a restart, no edit.

The entrypoint writes it as root into root's run directory, mode 0640 with
the servers' group: Trac (running as that user) must read the SMTP password
in it, and must not be able to change it.

`TRAC_INI__<section>__<option>=value` sets `[section] option = value`.
Section and option are written as trac.ini spells them, in lower case
(`TRAC_INI__ticket__default_version`, `TRAC_INI__ticket-custom__estimate.label`
through Compose or `docker run -e`, which take dots and dashes); names in
capitals or that do not split into exactly one section and one option are
refused, never ignored, so a typo does not go unnoticed. `..._FILE` (in
capitals) reads the value from a file, as for every setting. An empty value
is unset. Options the settings table owns are refused with the variable to
use instead.
"""

from __future__ import annotations

import configparser
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from trac_breezy import replace_file
from trac_breezy.container import settings
from trac_breezy.container.checks import (
    LOCKED_COMPONENTS,
    has_control_characters,
    turns_on_locked,
)
from trac_breezy.container.settings import Settings, SettingsError

PREFIX = "TRAC_INI__"
FILE_SUFFIX = "_FILE"
_SECTION = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")
_OPTION = re.compile(r"^[a-z0-9_.][a-z0-9_.*-]*$")

# Our Trac component that sends mail (trac_app/mail.py; a test keeps the two equal).
MAIL_SENDER = "TracBreezySmtpSender"
MAIL_COMPONENTS = "trac_breezy.trac_app.mail.*"
# Named on the admin pages: the plugins a project asks for that the image lacks
# (trac_app/missing_plugins.py; on in every project, old ones above all).
MISSING_PLUGINS_COMPONENTS = "trac_breezy.trac_app.missing_plugins.*"
DEFAULT_SMTP_PORTS = {"none": 25, "starttls": 587, "tls": 465}
# Who hears of a ticket change. Trac writes the first three into a new
# project unless an inherited file has the section (then it writes none);
# teams expect the reporter and the owner to hear of it too.
SUBSCRIPTIONS = (
    ("always_notify_cc", "CarbonCopySubscriber"),
    ("always_notify_updater", "TicketUpdaterSubscriber"),
    ("always_notify_previous_updater", "TicketPreviousUpdatersSubscriber"),
    ("always_notify_owner", "TicketOwnerSubscriber"),
    ("always_notify_reporter", "TicketReporterSubscriber"),
)

# Options the settings table writes: (section, option) -> the variable to set instead.
OWNED = {
    **{
        ("notification", option): variable
        for option, variable in (
            ("smtp_enabled", "SMTP_HOST"),
            ("smtp_server", "SMTP_HOST"),
            ("email_sender", "SMTP_HOST"),
            ("smtp_port", "SMTP_PORT"),
            ("use_tls", "SMTP_TLS"),
            ("use_ssl", "SMTP_TLS"),
            ("smtp_user", "SMTP_USER"),
            ("smtp_password", "SMTP_PASSWORD"),
            ("smtp_from", "SMTP_FROM"),
            ("smtp_from_name", "SMTP_FROM_NAME"),
            ("smtp_default_domain", "SMTP_DEFAULT_DOMAIN"),
            ("smtp_timeout", "SMTP_TIMEOUT"),
            ("smtp_ca_file", "SMTP_CA_FILE"),
        )
    },
    ("inherit", "plugins_dir"): "TRAC_PLUGINS_DIR",
    ("bzr", "tree_root"): "BZR_ROOT",
    ("versioncontrol", "allowed_repository_dir_prefixes"): "BZR_ROOT",
    ("bzr", "anonymous_read"): "BZR_ANONYMOUS_READ",
    ("svn", "authz_file"): "AUTHZ_FILE",
    # The same value for every project would be wrong for all but one.
    ("trac", "base_url"): "TRAC_BASE_URL",
    ("trac", "database"): "TRAC_DATABASE_URL",
}

# Trac's policy that reads the rule file (`[svn] authz_file`), then ours that
# hides changesets it leaves undecided (trac_app/authz_policy.py; a test keeps
# the names equal), and Trac 1.6's default `[trac] permission_policies` they go
# in front of (a test keeps them equal to Trac's). First, because the first
# policy with an answer decides: after DefaultPermissionPolicy, BROWSER_VIEW
# would be granted to everyone.
AUTHZ_POLICY = "AuthzSourcePolicy"
AUTHZ_POLICIES = (AUTHZ_POLICY, "AuthzChangesetPolicy")
AUTHZ_COMPONENTS = "trac_breezy.trac_app.authz_policy.*"
# With BZR_ANONYMOUS_READ=false, our policy that refuses Trac's source views
# to anonymous visitors (trac_app/private_source.py; a test keeps the names
# equal), first of all: the code is private, whatever the rules say.
PRIVATE_POLICY = "PrivateSourcePolicy"
PRIVATE_COMPONENTS = "trac_breezy.trac_app.private_source.*"
TRAC_DEFAULT_POLICIES = (
    "DefaultWikiPolicy",
    "DefaultTicketPolicy",
    "DefaultPermissionPolicy",
    "LegacyAttachmentPolicy",
)

HEADER = """\
# Made by trac-breezy at every start from the container's environment (README:
# Mail, Access rules, Any trac.ini setting, Plugins); changes here are lost at the next start.
# Every project inherits it ([inherit] file); a project's own trac.ini wins.
"""


@dataclass(frozen=True)
class IniValue:
    """One TRAC_INI__ variable: `[section] option = value`."""

    variable: str
    section: str
    option: str
    value: str


def split_name(variable: str) -> tuple[str, str] | str:
    """(section, option) of a TRAC_INI__ variable, or one line: why not and the fix."""
    parts = variable[len(PREFIX) :].split("__")
    if len(parts) != 2 or not all(parts):
        return (
            f"{variable} is not TRAC_INI__<section>__<option> (two underscores before each, "
            f"e.g. TRAC_INI__ticket__default_version); rename or unset it"
        )
    section, option = parts
    if section != section.lower() or option != option.lower():
        lower = f"{PREFIX}{section.lower()}__{option.lower()}"
        return f"{variable}: write the section and option in lower case, as trac.ini does: {lower}"
    if not _SECTION.match(section) or not _OPTION.match(option):
        return (
            f"{variable} names a section or option with characters trac.ini does not use; "
            "rename or unset it"
        )
    if (section, option) == ("inherit", "file"):
        return f"{variable}: the shared trac.ini cannot inherit another file; unset it"
    if section == "components" and turns_on_locked(option):
        return (
            f"{variable}: {option} stays off in every project (it lets a project admin run "
            "code or write files as the servers' user, docs/plugins.md); unset it"
        )
    if (section, option) in OWNED:
        owner = OWNED[(section, option)]
        return f"{variable}: [{section}] {option} comes from {owner}; set {owner} instead"
    return (section, option)


def variables(environ: Mapping[str, str]) -> list[str]:
    """Every TRAC_INI__ variable named in `environ`, `_FILE` variants folded in."""
    names = {
        name[: -len(FILE_SUFFIX)] if name.endswith(FILE_SUFFIX) else name
        for name in environ
        if name.startswith(PREFIX)
    }
    return sorted(names)


def check_value(value: str) -> str | None:
    if has_control_characters(value):
        return "contains a line break or another control character"
    if value != value.strip():
        return "has leading or trailing spaces, which trac.ini would drop"
    return None


def load(environ: Mapping[str, str]) -> tuple[IniValue, ...]:
    """Every TRAC_INI__ value, checked; raises SettingsError naming each bad one."""
    values, errors = [], []
    for variable in variables(environ):
        name = split_name(variable)
        if isinstance(name, str):
            errors.append(name)
            continue
        raw, error = settings.read_value(variable, "", environ)
        if error:
            errors.append(error)
        elif problem := check_value(raw):
            # A value from a file may be a secret: never shown.
            shown = "(hidden)" if environ.get(variable + FILE_SUFFIX) else repr(raw)
            errors.append(f"{variable}={shown} {problem}; fix or unset {variable}")
        elif raw:
            values.append(IniValue(variable, *name, raw))
    if errors:
        raise SettingsError(errors)
    return tuple(values)


def mail_options(loaded: Settings) -> dict[str, str]:
    """`[notification]` from the SMTP_* settings; nothing when SMTP_HOST is empty."""
    if not loaded.smtp_host:
        return {}
    port = loaded.smtp_port or DEFAULT_SMTP_PORTS[loaded.smtp_tls]
    options = {
        "smtp_enabled": "enabled",
        "email_sender": MAIL_SENDER,
        "smtp_server": loaded.smtp_host,
        "smtp_port": str(port),
        "use_tls": "enabled" if loaded.smtp_tls == "starttls" else "disabled",
        "use_ssl": "enabled" if loaded.smtp_tls == "tls" else "disabled",
        "smtp_from": loaded.smtp_from,
        # Trac's default is trac@localhost, where no answer would arrive.
        "smtp_replyto": loaded.smtp_from,
        "smtp_timeout": str(loaded.smtp_timeout),
    }
    optional = {
        "smtp_user": loaded.smtp_user,
        "smtp_password": loaded.smtp_password if loaded.smtp_user else "",
        "smtp_from_name": loaded.smtp_from_name,
        "smtp_ca_file": loaded.smtp_ca_file,
    }
    options.update({key: value for key, value in optional.items() if value})
    return options


def policies_list(value: str) -> list[str]:
    """The names in a `[trac] permission_policies` value, as Trac splits it."""
    return [name.strip() for name in value.split(",") if name.strip()]


def first_policies(authz: bool, private: bool) -> tuple[str, ...]:
    """The policies that must come first: PRIVATE_POLICY (anonymous reads off),
    then AUTHZ_POLICIES (AUTHZ_FILE)."""
    return ((PRIVATE_POLICY,) if private else ()) + (AUTHZ_POLICIES if authz else ())


def put_first(policies: Iterable[str], first: Iterable[str]) -> list[str]:
    """`policies` with `first` in front (moved there, or added)."""
    ahead = list(first)
    return [*ahead, *(name for name in policies if name not in ahead)]


def authz_first(policies: Iterable[str]) -> list[str]:
    """`policies` with AUTHZ_POLICIES first (moved there, or added)."""
    return put_first(policies, AUTHZ_POLICIES)


def authz_options(loaded: Settings) -> dict[str, dict[str, str]]:
    """With AUTHZ_FILE, Trac's source views obey the rule file too (README: Access rules);
    with BZR_ANONYMOUS_READ=false, they ask anonymous visitors to log in.

    Why in the shared file: every project reads the same rules, with the
    tree's paths (`[bzr] tree_root` gives each repository its place in it).
    """
    first = first_policies(bool(loaded.authz_file), not loaded.bzr_anonymous_read)
    if not first:
        return {}
    options = {"trac": {"permission_policies": ", ".join(put_first(TRAC_DEFAULT_POLICIES, first))}}
    if loaded.authz_file:
        options["svn"] = {"authz_file": loaded.authz_file}
    return options


def sections(loaded: Settings, overrides: Iterable[IniValue]) -> dict[str, dict[str, str]]:
    """What the shared trac.ini holds, section by section (TRAC_INI__ values last).

    A TRAC_INI__trac__permission_policies value keeps `first_policies` first
    (AUTHZ_FILE, BZR_ANONYMOUS_READ=false): no setting may open what they close.
    """
    result: dict[str, dict[str, str]] = {
        "inherit": {"plugins_dir": str(loaded.trac_plugins_dir)},
        "bzr": {"tree_root": str(loaded.bzr_root)},
        # Trac's repository panel takes directories in the tree only (the
        # Bazaar backend refuses others itself: trac_app/bzr/connector.py).
        "versioncontrol": {"allowed_repository_dir_prefixes": str(loaded.bzr_root)},
        **authz_options(loaded),
    }
    mail = mail_options(loaded)
    if loaded.smtp_default_domain:
        mail["smtp_default_domain"] = loaded.smtp_default_domain
    if mail:
        result["notification"] = mail
    components = dict.fromkeys(loaded.trac_components, "enabled")
    components.update(dict.fromkeys(LOCKED_COMPONENTS, "disabled"))
    components[MISSING_PLUGINS_COMPONENTS] = "enabled"
    if loaded.authz_file:
        components[AUTHZ_COMPONENTS] = "enabled"
    if not loaded.bzr_anonymous_read:
        components[PRIVATE_COMPONENTS] = "enabled"
        result["bzr"]["anonymous_read"] = "false"
    if loaded.smtp_host:
        components[MAIL_COMPONENTS] = "enabled"
        result["notification-subscriber"] = dict(SUBSCRIPTIONS)
    if components:
        result["components"] = components
    for value in overrides:
        result.setdefault(value.section, {})[value.option] = value.value
    first = first_policies(bool(loaded.authz_file), not loaded.bzr_anonymous_read)
    if first and "permission_policies" in result.get("trac", {}):
        chosen = policies_list(result["trac"]["permission_policies"])
        result["trac"]["permission_policies"] = ", ".join(put_first(chosen, first))
    return result


def render(loaded: Settings, overrides: Iterable[IniValue]) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_dict(sections(loaded, overrides))
    out = io.StringIO()
    parser.write(out)
    return HEADER + "\n" + out.getvalue()


def write(text: str, path: Path, group: int) -> None:
    """Replace `path` with `text`, mode 0640, group `group` (root writes it in its
    own directory; started as another user, that user's group stays)."""
    replace_file(path, text, 0o640, group)
