"""The checks and conversions behind the settings table, one small function each.

`settings.py` declares the table (which variable, which default, which check,
which type); the checks themselves live here, so the table stays readable and
so the other readers of the environment (`trac_ini.py`, the admin commands)
use the very same rules. A validator takes the raw string and returns why it
is wrong (or None); a converter takes a validated string and returns the
typed value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

# Characters and sequences that could end a quoted Apache argument, start a
# new directive or section, or trigger Apache's or mod_wsgi's own expansion.
_FORBIDDEN_SEQUENCES = ('"', "'", "\\", "<", ">", "`", "${", "%{")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Trac project names (directories under TRAC_ENV_PARENT_DIR).
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


def has_control_characters(value: str) -> bool:
    return bool(_CONTROL.search(value))


def check_apache_safe(value: str) -> str | None:
    """Return why `value` cannot be placed in Apache's config, or None."""
    if _CONTROL.search(value):
        return "contains a line break or another control character"
    for sequence in _FORBIDDEN_SEQUENCES:
        if sequence in value:
            return f"contains {sequence!r}, which Apache's configuration would interpret"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if value != value.strip():
        return "has leading or trailing spaces"
    return None


# -- validators: take the raw string, return an error text or None ----------

Validator = Callable[[str], "str | None"]

_URL_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
_FS_PATH = re.compile(r"^(/[A-Za-z0-9._@+=,~-]+)+$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")
_BASE_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!$&()*+,;=:@-]*)*$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
LOG_LEVELS = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")


def _has_dot_segment(value: str) -> bool:
    return "/../" in value + "/" or "/./" in value + "/"


def url_path(value: str) -> str | None:
    if not _URL_PATH.match(value) or _has_dot_segment(value):
        return "must be a URL path like /trac: a leading slash, no trailing slash, no '..'"
    return None


def fs_path(value: str) -> str | None:
    if not _FS_PATH.match(value) or _has_dot_segment(value):
        return "must be an absolute directory path like /srv/bzr, without '..'"
    return None


def boolean(value: str) -> str | None:
    if value.lower() not in _TRUE + _FALSE:
        return "must be true or false (also 1/0, yes/no, on/off)"
    return None


def integer(low: int, high: int) -> Validator:
    def check(value: str) -> str | None:
        if not value.isdigit() or not low <= int(value) <= high:
            return f"must be a whole number from {low} to {high}"
        return None

    return check


def optional(check: Validator) -> Validator:
    def check_unless_empty(value: str) -> str | None:
        return None if value == "" else check(value)

    return check_unless_empty


def one_of(*choices: str) -> Validator:
    def check(value: str) -> str | None:
        return None if value in choices else "must be one of " + ", ".join(choices)

    return check


def anything(value: str) -> str | None:
    return None


def base_url(value: str) -> str | None:
    if not _BASE_URL.match(value):
        return "must be an absolute http(s) URL like https://trac.example.org/trac"
    return None


def locale(value: str) -> str | None:
    return None if _LOCALE.match(value) else "must be a locale name like en_US or de"


def user_name(value: str) -> str | None:
    if not USER_NAME.match(value):
        return "must be 1-64 letters, digits or . _ @ + -, starting with a letter or digit"
    return None


def project_names(value: str) -> str | None:
    if not all(PROJECT_NAME.match(name) for name in comma_list(value)):
        return "must be project names (letters, digits, . _ -) separated by commas"
    return None


_POSTGRES_URL = re.compile(
    r"^postgres://[A-Za-z_][A-Za-z0-9_.-]{0,62}@[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z_][A-Za-z0-9_-]{0,62}$"
)


def postgres_url(value: str) -> str | None:
    if value.startswith("postgres://") and ":" in value.split("@", 1)[0][len("postgres://") :]:
        return "must not contain the password; give it in TRAC_DATABASE_PASSWORD_FILE"
    if not _POSTGRES_URL.match(value):
        return "must be a PostgreSQL URL like postgres://trac@postgres:5432/trac (no password)"
    return None


_REPOSITORY_ENTRY = re.compile(
    r"^[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?=[A-Za-z0-9._@+~-]+(/[A-Za-z0-9._@+~-]+)*$"
)


def repositories(value: str) -> str | None:
    entries = comma_list(value)
    bad = [
        e for e in entries if not _REPOSITORY_ENTRY.match(e) or ".." in e.split("=")[1].split("/")
    ]
    if bad or not entries:
        return (
            "must be project=branch-path or project:repository=branch-path entries, "
            "separated by commas, with paths relative to BZR_ROOT (e.g. code=code/trunk)"
        )
    return None


# -- converters: take a validated string, return the typed value ------------


def comma_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def as_bool(value: str) -> bool:
    return value.lower() in _TRUE


def optional_int(value: str) -> int | None:
    return int(value) if value else None


@dataclass(frozen=True)
class RepositoryLink:
    """One entry of TRAC_REPOSITORIES: show BZR_ROOT/`branch` in a project."""

    project: str
    repository: str  # "" is the project's default repository
    branch: str  # relative to BZR_ROOT; "" is BZR_ROOT itself


def repository_links(value: str) -> tuple[RepositoryLink, ...]:
    links = []
    for item in comma_list(value):
        target, _, relpath = item.partition("=")
        project, _, repository = target.partition(":")
        links.append(RepositoryLink(project, repository, relpath.strip("/")))
    return tuple(links)


# -- mail and Trac's configuration -------------------------------------------

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$")
# What Trac takes for a mail address (trac.notification.mail.EMAIL_LOOKALIKE_PATTERN):
# others it drops without a word, so they are refused here.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9.'+_-]{1,64}$")
_TOP_LABEL = re.compile(r"^[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?$")
# A Trac component rule: a module or class path, with `.*` for a whole package.
_COMPONENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\.\*)?$")
SMTP_TLS_MODES = ("none", "starttls", "tls")


def domain(value: str) -> str | None:
    if not _DOMAIN.match(value) or len(value) > 253:
        return "must be a domain name like example.org"
    return None


def host_name(value: str) -> str | None:
    if domain(value) is None or _IPV6.match(value):
        return None
    return "must be a host name or IP address like smtp.example.org (no port: SMTP_PORT)"


def mail_domain(value: str) -> str | None:
    """A domain Trac accepts in addresses: dotted, ending in a name (not `localhost`)."""
    if domain(value) or "." not in value or not _TOP_LABEL.match(value.rsplit(".", 1)[1]):
        return "must be a mail domain like example.org"
    return None


def email_address(value: str) -> str | None:
    local, at, rest = value.rpartition("@")
    if not at or not _LOCAL_PART.match(local) or mail_domain(rest):
        return "must be a mail address like trac@example.org"
    return None


# Trac's admin panels that no project may turn on (docs/plugins.md): the
# plugin upload runs any project admin's code as the servers' user, and the
# log panel writes Trac's log to any file that user may write (another
# project's trac.ini, a branch). In Trac's spelling of `[components]` rules
# (lower case); trac_app/locked_components.py keeps the same names (a test
# keeps the two equal).
LOCKED_COMPONENTS = (
    "trac.admin.web_ui.loggingadminpanel",
    "trac.admin.web_ui.pluginadminpanel",
)


def component_rule_name(rule: str) -> str:
    """The component or module a `[components]` rule names, as Trac reads it
    (`Environment._component_rules`: trailing dots and stars dropped, lower case)."""
    return rule.rstrip(".*").lower()


def turns_on_locked(rule: str) -> bool:
    """Would `rule = enabled` win over LOCKED_COMPONENTS' `disabled`?

    Trac applies the most specific rule: only a rule naming the component
    itself can turn it back on (`trac.admin.*` is less specific).
    """
    return component_rule_name(rule) in LOCKED_COMPONENTS


def component_rules(value: str) -> str | None:
    rules = comma_list(value)
    if not all(_COMPONENT.match(rule) for rule in rules):
        return (
            "must be Trac component names or packages ending in .* (e.g. acct_mgr.admin.*), "
            "separated by commas"
        )
    locked = [rule for rule in rules if turns_on_locked(rule)]
    if locked:
        return (
            f"names {', '.join(locked)}, which stays off in every project (it lets a project "
            "admin run code or write files as the servers' user, docs/plugins.md); remove it"
        )
    return None


def one_line_text(value: str) -> str | None:
    """Free text for trac.ini: anything on one line (control characters are refused first)."""
    return None


# -- HTTPS and reverse proxies -------------------------------------------------

_HTTPS_ORIGIN = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
HSTS_OFF = "off"
# Ten years: anything longer is a typo, not a policy.
_HSTS_MAX = 315360000


def file_path(value: str) -> str | None:
    if not _FS_PATH.match(value) or _has_dot_segment(value):
        return "must be an absolute file path like /run/secrets/trac-breezy/tls.crt, without '..'"
    return None


def hsts(value: str) -> str | None:
    if value.lower() == HSTS_OFF or integer(0, _HSTS_MAX)(value) is None:
        return None
    return f"must be a number of seconds (63072000 is two years) up to {_HSTS_MAX}, or off"


def https_origin(value: str) -> str | None:
    if not _HTTPS_ORIGIN.match(value):
        return (
            "must be the https:// address to send plain HTTP to, like https://trac.example.org "
            "or https://example.org:8443 (no path)"
        )
    return None


def ip_networks(value: str) -> str | None:
    """Addresses or CIDR networks (IPv4 or IPv6), separated by commas; never all of them."""
    entries = comma_list(value)
    if not entries:
        return "must be IP addresses or networks like 172.18.0.1 or 10.0.0.0/8, separated by commas"
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            network = None
        if network is None or "%" in entry:
            return (
                f"has {entry!r}, which is not an IP address or network like 10.0.0.5 or 10.0.0.0/8"
            )
        if network.prefixlen == 0:
            return (
                f"has {entry!r}, which trusts every address: any client could then claim to be "
                "another one, or to have come over https; name the proxies' addresses or subnet"
            )
    return None


def as_hsts(value: str) -> int:
    """max-age in seconds; 0 (no header) for `off`."""
    return 0 if value.lower() == HSTS_OFF else int(value)


def network_list(value: str) -> tuple[str, ...]:
    """Each entry in CIDR form (`172.18.0.1` becomes `172.18.0.1/32`), as Apache matches them."""
    return tuple(str(ipaddress.ip_network(entry, strict=False)) for entry in comma_list(value))
