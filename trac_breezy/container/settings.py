"""The container's settings: one declared table, read from the environment.

Every environment variable the container understands is one field of
`Settings`, declared with `setting(...)`: its default, its check, its type and
where it lands. The same table drives the entrypoint (validation and the Apache
configuration it renders), the unit tests (every row is checked against hostile
values) and the documentation's list of variables (`python -m
trac_breezy.container.settings` prints docs/configuration.md's table, `--lands`
docs/architecture.md's; tests keep the pages equal to it), so they cannot
drift. `load` parses every value once; code after it reads typed attributes
(`settings.bzr_allow_writes` is a bool), never strings.

Values end up inside Apache's configuration, mostly as `SetEnv` directives.
Anything that could change the meaning of that configuration (a line break, a
quote, a backslash, `${...}` variable expansion, `<` opening a section, control
bytes, ...) is refused before any other check, for every setting.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trac_breezy.container import identity, trusted_files
from trac_breezy.container.checks import (
    LOG_LEVELS,
    SMTP_TLS_MODES,
    RepositoryLink,
    Validator,
    anything,
    as_bool,
    as_hsts,
    base_url,
    boolean,
    check_apache_safe,
    comma_list,
    component_rules,
    email_address,
    file_path,
    fs_path,
    has_control_characters,
    host_name,
    hsts,
    https_origin,
    integer,
    ip_networks,
    locale,
    mail_domain,
    network_list,
    one_line_text,
    one_of,
    optional,
    optional_int,
    postgres_url,
    project_names,
    repositories,
    repository_links,
    url_path,
    user_name,
)
from trac_breezy.container.cross_checks import cross_checks
from trac_breezy.container.identity import Identity


class SettingsError(Exception):
    """One or more settings are invalid; each message names its variable."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


# -- the table ---------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One environment variable: its default, its check, its type and where it lands.

    `lands` and `help` are for people (docs/architecture.md, docs/configuration.md).
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
    in_apache_config: bool | None = None,
) -> Any:  # as dataclasses.field: the field's annotation says its type
    """A field of `Settings`: the variable is its name in capitals.

    `in_apache_config=False` for a value that only ever lands in trac.ini
    (free text such as a sender's name); secrets never reach Apache.
    """
    in_apache = not secret if in_apache_config is None else in_apache_config
    row = Setting("", default, validate, lands, help, convert, secret, in_apache)
    return dataclasses.field(metadata={"setting": row}, repr=not secret)


def secret(lands: str, help: str) -> Any:
    """A password: any text but control characters, never shown, empty by default."""
    return setting("", anything, lands, help, secret=True)


def number(default: str, low: int, high: int, lands: str, help: str) -> Any:
    """A whole number from `low` to `high`, an `int` once parsed."""
    return setting(default, integer(low, high), lands, help, convert=int)


def absolute_path(default: str, lands: str, help: str) -> Any:
    """An absolute path (of a directory or a file) without `..`, a `Path` once parsed."""
    return setting(default, fs_path, lands, help, convert=Path)


def switch(default: str, lands: str, help: str) -> Any:
    """True or false (also 1/0, yes/no, on/off), a `bool` once parsed."""
    return setting(default, boolean, lands, help, convert=as_bool)


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
    trac_env_parent_dir: Path = absolute_path(
        "/var/lib/trac",
        "`SetEnv trac.env_parent_dir` in Trac's `<Location>`",
        "Directory whose subdirectories are Trac environments (mount your volume here).",
    )
    trac_base_url: str = setting(
        "",
        optional(base_url),
        "`[trac] base_url` of each project without one: this URL + `/NAME`",
        "Public URL of the Trac root (e.g. `https://example.org/trac`), for links in mail "
        "and feeds, and the front page's commands; empty: taken from each request.",
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
    bzr_root: Path = absolute_path(
        "/srv/bzr",
        "`SetEnv bzr_wsgi.root` in the Bazaar `<Location>`; the `AliasMatch` target",
        "Directory of branches and shared repositories (mount your volume here).",
    )
    bzr_allow_writes: bool = switch(
        "true",
        "`SetEnv bzr_wsgi.mode read-write`",
        "Let authenticated users push, commit and create branches. `false`: the tree is "
        "read-only for everyone. Anonymous clients can never write.",
    )
    bzr_anonymous_read: bool = switch(
        "true",
        "Apache: `Require` in the Bazaar `<Location>`; `[bzr] anonymous_read` and "
        "`PrivateSourcePolicy` in Trac",
        "Let clients without a password branch and pull. `false`: every read needs a user too, "
        "and Trac's source views (browser, files, `/export/`, log, changesets and their zip, "
        "the timeline's and search's changesets) ask anonymous visitors to log in, and the "
        "front page lists no branches; wiki and tickets stay open.",
    )
    authz_file: str = setting(
        "",
        optional(file_path),
        "`SetEnv bzr_wsgi.authz_file` (smart server, tree pages); `[svn] authz_file` in Trac",
        "Access rules per project and path for brz and Trac's source views, in Subversion's "
        "authz format, reread when it changes. Empty: every user may read and write every "
        "branch. See Access rules.",
    )
    htpasswd_path: Path = absolute_path(
        "/var/lib/trac-breezy/htpasswd",
        "Apache's Basic auth (`wsgi/auth.wsgi`)",
        "The user database (bcrypt htpasswd) for pushes and Trac logins; created if missing.",
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
    trac_database_wait: int = number(
        "60",
        0,
        3600,
        "at start: how long to wait for PostgreSQL",
        "Seconds to wait at start for the `TRAC_DATABASE_URL` server to accept connections.",
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
    smtp_host: str = setting(
        "",
        optional(host_name),
        "`[notification] smtp_server` of the shared trac.ini; mail on",
        'SMTP server for Trac\'s ticket notifications in every project (a pushed "fixes #N" '
        "mails too), e.g. `smtp.example.org`. Empty: no mail. See Mail.",
    )
    smtp_port: int | None = setting(
        "",
        optional(integer(1, 65535)),
        "`[notification] smtp_port`",
        "Port of `SMTP_HOST`. Empty: 25, or 587 with `SMTP_TLS=starttls`, 465 with `tls`.",
        convert=optional_int,
    )
    smtp_tls: str = setting(
        "none",
        one_of(*SMTP_TLS_MODES),
        "`[notification] use_tls` (STARTTLS) or `use_ssl` (TLS)",
        "`starttls`: plain connection upgraded with STARTTLS; `tls`: TLS from the first byte "
        "(SMTPS); `none`: no encryption. The server's certificate is verified against "
        "`SMTP_CA_FILE`, or the system's CA certificates.",
    )
    smtp_user: str = setting(
        "",
        one_line_text,
        "`[notification] smtp_user`",
        "User name to log in to `SMTP_HOST` with; empty: no login.",
        in_apache_config=False,
    )
    smtp_password: str = secret(
        "`[notification] smtp_password` of the shared trac.ini (mode 0640, root's)",
        "Password of `SMTP_USER`; better given as a file in `SMTP_PASSWORD_FILE`.",
    )
    smtp_from: str = setting(
        "",
        optional(email_address),
        "`[notification] smtp_from`, `smtp_replyto`",
        "Address the mail comes from, e.g. `trac@example.org` (needed with `SMTP_HOST`).",
        in_apache_config=False,
    )
    smtp_from_name: str = setting(
        "",
        one_line_text,
        "`[notification] smtp_from_name`",
        "Sender name of the mail. Empty: each project's name.",
        in_apache_config=False,
    )
    smtp_default_domain: str = setting(
        "",
        optional(mail_domain),
        "`[notification] smtp_default_domain`",
        "Domain for users without an address of their own: mail for `alice` goes to "
        "`alice@DOMAIN`. Addresses given with `trac-breezy-user email` come first.",
    )
    smtp_timeout: int = number(
        "10",
        1,
        300,
        "`[notification] smtp_timeout` (trac-breezy's mail sender)",
        "Seconds to wait for `SMTP_HOST` at each step. A slow or unreachable server delays a "
        "ticket change by about this much (the change is saved, with a warning), never a push.",
    )
    smtp_ca_file: str = setting(
        "",
        optional(fs_path),
        "`[notification] smtp_ca_file`",
        "PEM file of the CA certificates that `SMTP_TLS` trusts, e.g. a file in `SECRETS_DIR`. "
        "Empty: the system's.",
    )
    trac_plugins_dir: Path = absolute_path(
        "/srv/trac-plugins",
        "`[inherit] plugins_dir` of the shared trac.ini",
        "Directory of single-file plugins (`*.py`, `*.egg`) shared by every project; "
        "compose.yaml mounts `./plugins` (or `TRAC_PLUGINS_DATA`) there, read-only. Enable "
        "their components with `TRAC_COMPONENTS`.",
    )
    trac_components: tuple[str, ...] = setting(
        "",
        optional(component_rules),
        "`[components] NAME = enabled` of the shared trac.ini",
        "Trac components to enable in every project, e.g. `acct_mgr.admin.*,acct_mgr.api.*` "
        "for a plugin of the `TRAC_PLUGINS` build argument or of `TRAC_PLUGINS_DIR`.",
        convert=comma_list,
    )
    wsgi_processes: int = number(
        "2",
        1,
        64,
        "`WSGIDaemonProcess trac processes=`",
        "Daemon processes that run Trac (the smart server has its own, `BZR_WSGI_PROCESSES`).",
    )
    wsgi_threads: int = number(
        "15",
        1,
        256,
        "`WSGIDaemonProcess trac threads=`",
        "Threads in each of Trac's daemon processes. 2 x 4 is faster on two cores "
        "(`docs/benchmarks.md`, shape of the daemon group), but every slow client (or slow "
        "page) holds a thread until "
        "Apache's timeouts end it, so the default keeps 30 of them.",
    )
    bzr_wsgi_processes: int = number(
        "2",
        1,
        64,
        "`WSGIDaemonProcess bzr processes=`",
        "Daemon processes that run the smart server, apart from Trac's, so clones and pushes "
        "never hold Trac's threads. Breezy's work is CPU-bound: one per core.",
    )
    bzr_wsgi_threads: int = number(
        "8",
        1,
        256,
        "`WSGIDaemonProcess bzr threads=`",
        "Threads in each smart-server process: a clone, pull or push holds one for as long "
        "as it runs, so this times `BZR_WSGI_PROCESSES` is how many run at once.",
    )
    login_failure_limit: int = number(
        "10",
        0,
        100000,
        "mod_qos: `QS_ClientEventLimitCount`",
        "Failed logins (credentials sent and refused, on Bazaar or Trac) one client address "
        "may make within `LOGIN_LOCKOUT_SECONDS`; past it, every request from that address "
        "gets 429 until the period has passed. A password prompt without credentials does "
        "not count. `0`: no limit. Behind a reverse proxy, set `TRUSTED_PROXIES` so that "
        "each client counts under its own address, not the proxy's.",
    )
    login_lockout_seconds: int = number(
        "300",
        10,
        86400,
        "mod_qos: `QS_ClientEventLimitCount`",
        "The period over which failed logins are counted, and how long an address that made "
        "too many is refused.",
    )
    trac_expensive_pages: str = setting(
        "limit",
        one_of("open", "limit", "login"),
        "Apache: `Require`, mod_qos: `QS_CondClientEventLimitCount`",
        "Trac's log, changesets and diffs, annotate, old revisions (`rev=`), past timeline "
        "periods, `/export/` and zip downloads (what crawlers take a host down with). "
        "`limit`: open, but an anonymous address that asks for more than 60 of them a minute "
        "gets 429 for them for a minute. `login`: anonymous visitors must log in for them. "
        "`open`: no limit. Other pages stay open either way.",
    )
    max_connections_per_address: int = number(
        "64",
        0,
        100000,
        "mod_qos: `QS_SrvMaxConnPerIP`",
        "Connections one client address may hold open at once (a browser opens 6, brz 1-2); "
        "more are closed at once, so one address cannot hold Apache's 256 workers. Enough "
        "for about ten people behind one NAT; raise it for more. `TRUSTED_PROXIES` are not "
        "limited (limit clients on the proxy). `0`: no limit.",
    )
    listen_port: int = number(
        "8080",
        1024,
        65535,
        "Apache: `Listen`",
        "Port Apache listens on inside the container (unprivileged, so 1024 or above).",
    )
    # HTTPS (README, HTTPS): in the container's Apache, or behind a reverse proxy.
    tls_cert_file: str = setting(
        "",
        optional(file_path),
        "Apache: `SSLCertificateFile` (a copy in root's run directory)",
        "PEM certificate for HTTPS on `TLS_PORT` (the server's own first, then the "
        "intermediate ones), e.g. `/run/secrets/trac-breezy/tls.crt`. Empty: no HTTPS in "
        "the container. See HTTPS.",
    )
    tls_key_file: str = setting(
        "",
        optional(file_path),
        "Apache: `SSLCertificateKeyFile` (a copy, mode 0640, root's)",
        "Unencrypted PEM private key of `TLS_CERT_FILE`. May be root's with mode 0600: root "
        "reads it at start, only where the servers' user cannot change it, and checks that "
        "it belongs to the certificate.",
    )
    tls_port: int = number(
        "8443",
        1024,
        65535,
        "Apache: `Listen`, `<VirtualHost>` with `SSLEngine on`",
        "Port of HTTPS inside the container when `TLS_CERT_FILE` is set (compose.yaml "
        "publishes it as `HTTPS_PORT`). Same pages as `LISTEN_PORT`.",
    )
    tls_hsts: int = setting(
        "63072000",
        hsts,
        "`Strict-Transport-Security: max-age=` on HTTPS answers",
        "Seconds for which browsers must reach this host name over HTTPS only (two years, "
        "as Mozilla's guidelines say); sent over HTTPS only. `off`: no header (for trying a "
        "certificate out: browsers remember it).",
        convert=as_hsts,
    )
    tls_redirect_http: str = setting(
        "",
        optional(https_origin),
        "mod_rewrite on `LISTEN_PORT`: 301 to this origin, same path",
        "Send whoever comes over plain HTTP to this HTTPS address, e.g. "
        "`https://trac.example.org`, same path and query. Requests from the container "
        "itself (the healthcheck) and from `TRUSTED_PROXIES` that say they came over https "
        "are served. Empty: plain HTTP is served.",
    )
    trusted_proxies: tuple[str, ...] = setting(
        "",
        optional(ip_networks),
        "mod_remoteip: `RemoteIPInternalProxy`; `X-Forwarded-Proto` honoured from them only",
        "Reverse proxies in front, as addresses or networks: `172.18.0.1`, "
        "`10.0.0.0/8,fd00::/8`. From them only, `X-Forwarded-For` gives the client's address "
        "(logs, `LOGIN_FAILURE_LIMIT`, Trac) and `X-Forwarded-Proto: https` makes Trac "
        "build `https://` links. Empty: every such header is ignored.",
        convert=network_list,
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


def read_value(name: str, default: str, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """The value of variable `name` from NAME or NAME_FILE (`default` when both
    are unset), with an error naming the variable, or None."""
    file_name = name + "_FILE"
    # Empty counts as unset, for NAME and NAME_FILE alike: Compose passes an
    # unset `${X:-}` through as "".
    if environ.get(file_name, "") == "":
        return environ.get(name) or default, None
    if environ.get(name, "") != "":
        return "", f"{name} and {file_name} are both set; set only one of them"
    return trusted_files.read_text(file_name, environ[file_name], _servers_user(name, environ))


# Who the servers' user is: their own files are read before that is known.
_IDENTITY_SETTINGS = ("PUID", "PGID", "BZR_ROOT")


def _servers_user(name: str, environ: Mapping[str, str]) -> Identity | None:
    """Whom root's reading of NAME_FILE must not trust (the servers' user, as the
    entrypoint will choose it); None: anybody but root."""
    if name in _IDENTITY_SETTINGS:
        return None
    values: dict[str, Any] = {}
    for row in (BY_NAME[n] for n in _IDENTITY_SETTINGS):
        value, error = read_value(row.name, row.default, environ)
        if error or row.validate(value):
            return None  # reported by load() anyway; trust nobody meanwhile
        values[row.name] = row.convert(value)
    return identity.resolve(values["PUID"], values["PGID"], values["BZR_ROOT"], Identity(0, 0))


def _shown(setting: Setting, value: str) -> str:
    return "(hidden)" if setting.secret else repr(value)


def _check(setting: Setting, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """(raw value, error naming the variable and the fix, or None)."""
    value, error = read_value(setting.name, setting.default, environ)
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
    errors = cross_checks(loaded)
    if errors:
        raise SettingsError(errors)
    return loaded


def _check_form(setting: Setting, value: str) -> str | None:
    if setting.in_apache_config:
        return check_apache_safe(value)
    if has_control_characters(value):
        return "contains a line break or another control character"
    return None


def markdown_table() -> str:
    """The table of variables for people who run the image (docs/configuration.md)."""
    lines = ["| Variable | Default | What it does |", "|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(empty)"
        lines.append(f"| `{s.name}` | {default} | {s.help} |")
    return "\n".join(lines)


def lands_table() -> str:
    """Where each variable ends up in Apache or Trac (docs/architecture.md)."""
    lines = ["| Variable | Where it lands |", "|---|---|"]
    lines += [f"| `{s.name}` | {s.lands} |" for s in SETTINGS]
    return "\n".join(lines)


if __name__ == "__main__":
    table = lands_table() if sys.argv[1:] == ["--lands"] else markdown_table()
    sys.stdout.write(table + "\n")
