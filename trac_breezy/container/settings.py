"""The container's settings: one declared table, read from the environment.

Every environment variable the container understands is one field of
`Settings`, declared with `setting(...)`: its default, its check, its type and
where it lands. The same table drives the entrypoint (validation and the Apache
configuration it renders), the unit tests (every row is checked against hostile
values) and the README's list of variables (`python -m
trac_breezy.container.settings` prints it; a test keeps the README equal to
it), so the three cannot drift. `load` parses every value once; code after it
reads typed attributes (`settings.bzr_allow_writes` is a bool), never strings.

Values end up inside Apache's configuration, mostly as `SetEnv` directives.
Anything that could change the meaning of that configuration (a line break, a
quote, a backslash, `${...}` variable expansion, `<` opening a section, control
bytes, ...) is refused before any other check, for every setting.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Characters and sequences that could end a quoted Apache argument, start a
# new directive or section, or trigger Apache's or mod_wsgi's own expansion.
_FORBIDDEN_SEQUENCES = ('"', "'", "\\", "<", ">", "`", "${", "%{")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Trac project names (directories under TRAC_ENV_PARENT_DIR).
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


class SettingsError(Exception):
    """One or more settings are invalid; each message names its variable."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


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


# -- the table ---------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One environment variable: its default, its check, its type and where it lands.

    `lands` and `help` are for people (the README).
    """

    name: str
    default: str
    validate: Validator
    lands: str
    help: str
    convert: Callable[[str], Any] = str
    secret: bool = False
    # False for values that never reach Apache's configuration (a password):
    # then only control characters are refused.
    in_apache_config: bool = True


def setting(
    default: str,
    validate: Validator,
    lands: str,
    help: str,
    *,
    convert: Callable[[str], Any] = str,
    secret: bool = False,
) -> Any:
    """A field of `Settings`: the variable is its name in capitals."""
    row = Setting("", default, validate, lands, help, convert, secret, in_apache_config=not secret)
    return dataclasses.field(metadata={"setting": row}, repr=not secret)


def secret(lands: str, help: str) -> Any:
    """A password: any text but control characters, never shown, empty by default."""
    return setting("", anything, lands, help, secret=True)


def unix_id(lands: str, help: str) -> Any:
    """A user or group id other than root's; empty (the default) means "work it out"."""
    return setting("", optional(integer(1, 2**31 - 1)), lands, help, convert=optional_int)


@dataclass(frozen=True)
class Settings:
    """Every setting, validated and typed (see the module docstring)."""

    trac_url_path: str = setting(
        "/trac",
        url_path,
        "Apache: `WSGIScriptAlias`",
        "URL path under which Trac is served; `/trac/` lists the projects.",
    )
    trac_env_parent_dir: Path = setting(
        "/var/lib/trac",
        fs_path,
        "`SetEnv trac.env_parent_dir` in Trac's `<Location>`",
        "Directory whose subdirectories are Trac environments (mount your volume here).",
        convert=Path,
    )
    trac_base_url: str = setting(
        "",
        optional(base_url),
        "`SetEnv trac.base_url` when set",
        "Public URL of the Trac root, for links in mail and feeds; empty: taken from each request.",
    )
    trac_locale: str = setting(
        "",
        optional(locale),
        "`SetEnv trac.locale` when set",
        "Language of Trac's pages for everyone; empty: each browser's choice.",
    )
    bzr_url_path: str = setting(
        "/bzr",
        url_path,
        "Apache: `WSGIScriptAliasMatch`, `AliasMatch`; `SetEnv bzr_wsgi.prefix`",
        "URL path under which the Bazaar tree is served (smart server and plain files).",
    )
    bzr_root: Path = setting(
        "/srv/bzr",
        fs_path,
        "`SetEnv bzr_wsgi.root` in the Bazaar `<Location>`; the `AliasMatch` target",
        "Directory of branches and shared repositories (mount your volume here).",
        convert=Path,
    )
    bzr_allow_writes: bool = setting(
        "true",
        boolean,
        "`SetEnv bzr_wsgi.mode read-write`",
        "Let authenticated users push, commit and create branches. `false`: the tree is "
        "read-only for everyone. Anonymous clients can never write.",
        convert=as_bool,
    )
    bzr_anonymous_read: bool = setting(
        "true",
        boolean,
        "Apache: `Require` in the Bazaar `<Location>`",
        "Let clients without a password branch and pull. `false`: every read needs a user too.",
        convert=as_bool,
    )
    htpasswd_path: Path = setting(
        "/var/lib/trac-breezy/htpasswd",
        fs_path,
        "Apache: `AuthUserFile`",
        "The user database (bcrypt htpasswd) for pushes and Trac logins; created if missing.",
        convert=Path,
    )
    admin_user: str = setting(
        "",
        optional(user_name),
        "a user in `HTPASSWD_PATH`",
        "At start, create this user if missing (with `ADMIN_PASSWORD`). Nobody exists by "
        "default, and then nobody can write.",
    )
    admin_password: str = secret(
        "the password of `ADMIN_USER` when it is created",
        "Password for `ADMIN_USER`; better given as a file in `ADMIN_PASSWORD_FILE` "
        "(a Compose secret). Never logged; an existing user's password is left alone.",
    )
    trac_projects: tuple[str, ...] = setting(
        "",
        optional(project_names),
        "at start: `trac-breezy-project create NAME` for each missing one",
        "Trac projects to create at start when missing, e.g. `code,docs`. New projects log to "
        "stderr, have the Bazaar backend on and give `ADMIN_USER` `TRAC_ADMIN`.",
        convert=comma_list,
    )
    trac_database_url: str = setting(
        "",
        optional(postgres_url),
        "`[trac] database` of new projects, with `?schema=NAME`",
        "PostgreSQL server for new projects, e.g. `postgres://trac@postgres/trac` (the "
        "`postgres` profile of compose.yaml); each project gets its own schema. Empty: "
        "SQLite in each project. Existing projects keep their database.",
    )
    trac_database_password: str = secret(
        "libpq's password file (`PGPASSFILE`), not trac.ini",
        "Password of the `TRAC_DATABASE_URL` user; better given as a file in "
        "`TRAC_DATABASE_PASSWORD_FILE` (a Compose secret).",
    )
    trac_database_wait: int = setting(
        "60",
        integer(0, 3600),
        "at start: how long to wait for PostgreSQL",
        "Seconds to wait at start for the `TRAC_DATABASE_URL` server to accept connections.",
        convert=int,
    )
    trac_repositories: tuple[RepositoryLink, ...] = setting(
        "",
        optional(repositories),
        "at start: `trac-admin ENV repository add`, components enabled",
        "Connect Trac projects to branches: `code=code/trunk,docs:manual=docs` shows "
        "`BZR_ROOT/code/trunk` as the default repository of project `code` and `BZR_ROOT/docs` "
        "as repository `manual` of `docs`. Adds only what is missing.",
        convert=repository_links,
    )
    wsgi_processes: int = setting(
        "2",
        integer(1, 64),
        "`WSGIDaemonProcess trac processes=`",
        "Daemon processes that run Trac (the smart server has its own, `BZR_WSGI_PROCESSES`).",
        convert=int,
    )
    wsgi_threads: int = setting(
        "15",
        integer(1, 256),
        "`WSGIDaemonProcess trac threads=`",
        "Threads in each of Trac's daemon processes. 2 x 4 is about 20 % faster on two cores "
        "(`docs/benchmarks.md`), but every slow client (or slow page) holds a thread until "
        "Apache's timeouts end it, so the default keeps 30 of them.",
        convert=int,
    )
    bzr_wsgi_processes: int = setting(
        "2",
        integer(1, 64),
        "`WSGIDaemonProcess bzr processes=`",
        "Daemon processes that run the smart server, apart from Trac's, so clones and pushes "
        "never hold Trac's threads. Breezy's work is CPU-bound: one per core.",
        convert=int,
    )
    bzr_wsgi_threads: int = setting(
        "8",
        integer(1, 256),
        "`WSGIDaemonProcess bzr threads=`",
        "Threads in each smart-server process: a clone, pull or push holds one for as long "
        "as it runs, so this times `BZR_WSGI_PROCESSES` is how many run at once.",
        convert=int,
    )
    login_failure_limit: int = setting(
        "10",
        integer(0, 100000),
        "mod_qos: `QS_ClientEventLimitCount`",
        "Failed logins (credentials sent and refused, on Bazaar or Trac) one client address "
        "may make within `LOGIN_LOCKOUT_SECONDS`; past it, every request from that address "
        "gets 429 until the period has passed. A password prompt without credentials does "
        "not count. `0`: no limit. Behind a reverse proxy all clients share its address: "
        "limit there, and set `0` here.",
        convert=int,
    )
    login_lockout_seconds: int = setting(
        "300",
        integer(10, 86400),
        "mod_qos: `QS_ClientEventLimitCount`",
        "The period over which failed logins are counted, and how long an address that made "
        "too many is refused.",
        convert=int,
    )
    listen_port: int = setting(
        "8080",
        integer(1024, 65535),
        "Apache: `Listen`",
        "Port Apache listens on inside the container (unprivileged, so 1024 or above).",
        convert=int,
    )
    log_level: str = setting(
        "warn",
        one_of(*LOG_LEVELS),
        "Apache: `LogLevel`",
        "Apache's error log level; the log goes to the container's stderr.",
    )
    puid: int | None = unix_id(
        "user the servers run as",
        "User id Apache and the apps run as. Empty: the owner of `BZR_ROOT` when that is "
        "not root, else 33 (www-data). Pushed files are owned by it; nothing is chown'ed.",
    )
    pgid: int | None = unix_id(
        "group the servers run as",
        "Group id to run as. Empty: `PUID`'s primary group when `PUID` is set, else the "
        "group of `BZR_ROOT` when its owner is not root, else 33.",
    )


def _rows() -> tuple[Setting, ...]:
    return tuple(
        dataclasses.replace(field.metadata["setting"], name=field.name.upper())
        for field in dataclasses.fields(Settings)
    )


SETTINGS: tuple[Setting, ...] = _rows()
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def _raw_value(setting: Setting, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """The value of `setting` from NAME or NAME_FILE, with an error or None."""
    name, file_name = setting.name, setting.name + "_FILE"
    # Empty counts as unset, for NAME and NAME_FILE alike: Compose passes an
    # unset `${X:-}` through as "".
    if environ.get(file_name, "") == "":
        return environ.get(name) or setting.default, None
    if environ.get(name, "") != "":
        return "", f"{name} and {file_name} are both set; set only one of them"
    path = environ[file_name]
    try:
        with open(path, encoding="utf-8") as secret:
            return secret.read().rstrip("\r\n"), None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        return (
            "",
            f"{file_name}={path}: cannot read the file ({reason}); mount it or unset {file_name}",
        )


def _shown(setting: Setting, value: str) -> str:
    return "(hidden)" if setting.secret else repr(value)


def _check(setting: Setting, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """(raw value, error naming the variable and the fix, or None)."""
    value, error = _raw_value(setting, environ)
    if error is not None:
        return value, error
    error = _check_form(setting, value) or setting.validate(value)
    if error:
        return (
            value,
            f"{setting.name}={_shown(setting, value)} {error}; fix or unset {setting.name}",
        )
    return value, None


def load(environ: Mapping[str, str]) -> Settings:
    """Every setting validated and typed; raises SettingsError naming each bad one."""
    raw: dict[str, str] = {}
    errors: list[str] = []
    for row in SETTINGS:
        raw[row.name], error = _check(row, environ)
        if error:
            errors.append(error)
    if errors:
        raise SettingsError(errors)
    loaded = Settings(**{row.name.lower(): row.convert(raw[row.name]) for row in SETTINGS})
    errors = _cross_checks(loaded)
    if errors:
        raise SettingsError(errors)
    return loaded


def _check_form(setting: Setting, value: str) -> str | None:
    if setting.in_apache_config:
        return check_apache_safe(value)
    if has_control_characters(value):
        return "contains a line break or another control character"
    return None


def _cross_checks(settings: Settings) -> list[str]:
    errors = []
    trac, bzr = settings.trac_url_path, settings.bzr_url_path
    if trac == bzr or trac.startswith(bzr + "/") or bzr.startswith(trac + "/"):
        errors.append(
            f"TRAC_URL_PATH={trac!r} and BZR_URL_PATH={bzr!r} overlap; give each its own path"
        )
    if settings.admin_user and not settings.admin_password:
        errors.append(
            "ADMIN_USER is set but ADMIN_PASSWORD is empty; set ADMIN_PASSWORD or "
            "ADMIN_PASSWORD_FILE, or unset ADMIN_USER"
        )
    return errors


def markdown_table() -> str:
    """The README's table of variables."""
    lines = ["| Variable | Default | Where it lands | What it does |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(empty)"
        lines.append(f"| `{s.name}` | {default} | {s.lands} | {s.help} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
