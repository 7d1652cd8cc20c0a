"""Container entrypoint: environment variables in, a checked Apache config out.

Modelled on docker-library's entrypoints: with the default command
(`supervisord`) it validates every setting, checks the volumes, writes the
trac.ini every Trac project inherits, renders Apache's configuration and lets
Apache check it, drops root for the user that owns the data, runs the
start-up tasks on the volumes (database, shared trac.ini, upgrades, projects,
repositories, mail addresses) as that user, and execs supervisord. Any other
command is exec'ed as given, so `docker run IMAGE bash` gives a shell.

Every problem ends here with one line naming the cause and the fix, and a
non-zero exit, before Apache starts. Nothing in the volumes is re-owned:
no chown, no chmod. Root writes only into root's own run directory, never
follows a path the servers' user could have planted, and touches the volumes
not at all: the start-up tasks run after root is dropped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import sys
from collections.abc import Mapping

from trac_breezy import authz, log, open_regular, passwords
from trac_breezy.admin import (
    AdminError,
    emails,
    global_config,
    locks,
    migrate,
    postgres,
    projects,
    repositories,
    upgrade,
    users,
)
from trac_breezy.container import identity, paths, settings, trac_ini
from trac_breezy.container.identity import Identity
from trac_breezy.container.settings import Settings
from trac_breezy.container.trac_ini import IniValue
from trac_breezy.startup import apache_config, apache_runner, sqlite_guard, tls

EXIT_CONFIG = 2
DEFAULT_COMMAND = "supervisord"


class StartupError(Exception):
    """Something that keeps the container from serving; the text says what to do."""


def check_directory(
    name: str, path: os.PathLike[str], server: Identity, need_write: bool, why: str = ""
) -> None:
    """BZR_ROOT / TRAC_ENV_PARENT_DIR must exist and be usable by the servers' user.

    `why` says what needs the write access, for the error message.
    """
    what = f"{name}={path}"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise StartupError(f"{what} does not exist; mount a volume there or set {name}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StartupError(f"{what} is not a directory; mount a directory there")
    needed = os.R_OK | os.X_OK | (os.W_OK if need_write else 0)
    if not identity.can_access(info, server, needed):
        access = "read and write" if need_write else "read"
        because = f" ({why})" if why else ""
        raise StartupError(
            f"{what} is owned by {info.st_uid}:{info.st_gid} with mode "
            f"{stat.filemode(info.st_mode)}, which user {server.uid}:{server.gid} cannot "
            f"{access}{because}; set PUID/PGID to its owner or give that user access"
        )


def check_volumes(loaded: Settings, server: Identity) -> None:
    """Every volume usable for what the settings will do with it, before anything runs.

    Trac's own tools would otherwise fail half-way with a traceback.
    """
    check_directory(
        "BZR_ROOT", loaded.bzr_root, server, loaded.bzr_allow_writes, "pushes write there"
    )
    trac_writers = [
        name
        for name, value in (
            ("TRAC_PROJECTS", loaded.trac_projects),
            ("TRAC_REPOSITORIES", loaded.trac_repositories),
        )
        if value
    ]
    check_directory(
        "TRAC_ENV_PARENT_DIR",
        loaded.trac_env_parent_dir,
        server,
        bool(trac_writers),
        " and ".join(trac_writers) + " write there" if trac_writers else "",
    )


def check_readable_file(name: str, path: str, server: Identity) -> None:
    """A file the servers will read (SMTP_CA_FILE) is there and readable by them."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise StartupError(
            f"{name}={path}: {error.strerror}; mount the file there or unset {name}"
        ) from None
    if not stat.S_ISREG(info.st_mode) or not identity.can_access(info, server, os.R_OK):
        raise StartupError(
            f"{name}={path} is not a file that user {server.uid}:{server.gid} can read; "
            f"make it readable (mode 0644) or unset {name}"
        )


def check_access_rules(loaded: Settings, server: Identity) -> None:
    """AUTHZ_FILE, when set, is a file the servers can read that says one thing.

    Checked here so that a mistake stops the start with its line, instead of
    every request being refused (what the servers do with a file that breaks
    later: trac_breezy.authz). Read without following links, never written.
    """
    if not loaded.authz_file:
        return
    check_readable_file("AUTHZ_FILE", loaded.authz_file, server)
    with os.fdopen(open_regular(loaded.authz_file), encoding="utf-8") as file:
        try:
            rules = authz.parse(file.read(), f"AUTHZ_FILE={loaded.authz_file}")
        except (authz.AuthzError, UnicodeError) as error:
            raise StartupError(f"{error}; fix the file or unset AUTHZ_FILE") from None
    log(
        f"access rules from {loaded.authz_file} ({len(rules.sections)} paths), "
        "reread whenever the file changes"
    )


def load_environment(environ: Mapping[str, str]) -> tuple[Settings, tuple[IniValue, ...]]:
    """The settings table and the TRAC_INI__ values, every error of both at once."""
    errors: list[str] = []
    loaded: Settings | None = None
    overrides: tuple[IniValue, ...] = ()
    try:
        loaded = settings.load(environ)
    except settings.SettingsError as error:
        errors += error.messages
    try:
        overrides = trac_ini.load(environ)
    except settings.SettingsError as error:
        errors += error.messages
    if errors or loaded is None:
        raise settings.SettingsError(errors)
    return loaded, overrides


def write_shared_trac_ini(
    loaded: Settings, overrides: tuple[IniValue, ...], server: Identity
) -> None:
    """The trac.ini every project inherits (mail, plugins, TRAC_INI__), root's, 0640."""
    if loaded.smtp_ca_file:
        check_readable_file("SMTP_CA_FILE", loaded.smtp_ca_file, server)
    trac_ini.write(trac_ini.render(loaded, overrides), paths.TRAC_GLOBAL_INI, server.gid)
    if loaded.smtp_host:
        log(
            f"mail on: through {loaded.smtp_host} ({loaded.smtp_tls}) from {loaded.smtp_from}"
            + (
                ""
                if loaded.trac_base_url
                else "; set TRAC_BASE_URL, or links in mail sent for pushes cannot name the server"
            )
        )
    if overrides:
        log("TRAC_INI__: " + ", ".join(f"[{v.section}] {v.option}" for v in overrides))


def make_health_token() -> str:
    """A secret that lets the healthcheck past `BZR_ANONYMOUS_READ=false`.

    Made at each start, readable only by whoever started the container (the
    healthcheck runs as that user); Apache gets it in its configuration.
    """
    token = secrets.token_hex(16)
    paths.HEALTH_TOKEN_FILE.unlink(missing_ok=True)
    paths.HEALTH_TOKEN_FILE.touch(mode=0o600)
    paths.HEALTH_TOKEN_FILE.write_text(token + "\n")
    return token


def remove_entry(path: os.PathLike[str]) -> None:
    """Remove whatever is at `path` (a link is removed, never followed)."""
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)  # resists symlink attacks where the OS allows (Linux does)


def prepare_run_dir(server: Identity) -> None:
    """RUN_DIR root's own; SERVER_RUN_DIR made anew for the servers' user.

    Started as root, whatever a previous run left in the servers' directory
    (links planted by the servers' user included) is removed, and the new
    directory is handed over only once everything in it is made, while its
    parent is root's: there is no moment at which a link could be swapped in.
    """
    server_dirs = (
        paths.SERVER_RUN_DIR,
        paths.SERVER_HOME,
        paths.EGG_CACHE,
        paths.SMART_REQUESTS_DIR,
    )
    if os.geteuid() != 0:  # compose `user:`: everything is ours already
        for path in (paths.RUN_DIR, *server_dirs):
            path.mkdir(mode=0o755, exist_ok=True)
        return
    paths.RUN_DIR.mkdir(mode=0o755, exist_ok=True)
    identity.hand_directory_to(paths.RUN_DIR, Identity(0, 0), 0o755)
    remove_entry(paths.SERVER_RUN_DIR)
    for path in server_dirs:
        path.mkdir(mode=0o755)
    for path in reversed(server_dirs):
        identity.hand_directory_to(path, server, 0o755)


def hand_over_stdio(server: Identity) -> None:
    """Let the unprivileged servers reopen the container's stdout/stderr.

    They are pipes (or a tty) created for root; Apache and supervisord reopen
    them by path, which the kernel checks against the pipe's owner.
    """
    for fd in (1, 2):
        try:
            info = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISFIFO(info.st_mode) or (stat.S_ISCHR(info.st_mode) and os.isatty(fd)):
            os.fchown(fd, server.uid, server.gid)


def prepare(environ: Mapping[str, str]) -> tuple[Settings, Identity]:
    """Validate, check and render; returns the settings and the identity to run as."""
    loaded, overrides = load_environment(environ)
    running_as = Identity.current()
    server = identity.resolve_identity(loaded, running_as)
    writes = loaded.bzr_allow_writes
    check_volumes(loaded, server)
    prepare_run_dir(server)
    write_shared_trac_ini(loaded, overrides, server)
    check_access_rules(loaded, server)
    users.prepare_at_start(loaded, server)
    os.environ[passwords.DECOY_VARIABLE] = users.make_decoy()  # Apache's, through supervisord
    tls_server_name = tls.install(loaded, server)  # HTTPS: root's checked cert and key
    context = apache_config.template_context(loaded, make_health_token())
    context["tls_server_name"] = tls_server_name
    paths.HTTPD_CONF.write_text(apache_config.render(context))
    apache_config.configtest(paths.HTTPD_CONF)
    if running_as.uid == 0:
        identity.ensure_passwd_entry(server)
        hand_over_stdio(server)
    mode = "pushes need a password" if writes else "read-only: BZR_ALLOW_WRITES is false"
    log(
        f"serving Trac at {loaded.trac_url_path}/ and Bazaar at {loaded.bzr_url_path}/ "
        f"({mode}) on port {loaded.listen_port} as uid {server.uid} gid {server.gid}"
    )
    return loaded, server


def prepare_volumes(loaded: Settings) -> None:
    """As the servers' user: locks of dead pushes broken, the database
    reachable, old projects repaired and upgraded, every project inheriting
    the shared trac.ini, new ones made and connected, users' mail addresses
    in every project.

    Projects are repaired and upgraded as they are before they inherit
    anything, so that a failed upgrade leaves a project exactly as it was
    mounted (its trac.ini too); then once more, for what a plugin enabled in
    the shared file may need (a project that needs nothing is only looked
    at). Each project on its own: one that cannot be opened is not served,
    and says why on the front page (admin/migrate.py)."""
    if loaded.bzr_allow_writes:
        locks.break_locks_of_this_host(loaded.bzr_root)
    postgres.connect_to_server(loaded)
    unserved = migrate.open_projects(loaded)
    global_config.update_all(loaded, skip=unserved)
    unserved.update(upgrade.upgrade_all(loaded, skip=unserved))
    projects.create_from_setting(loaded)
    if loaded.trac_repositories:
        repositories.configure(loaded, skip=unserved)
    emails.fill_in_at_start(loaded, skip=unserved)
    migrate.log_users_file(loaded)
    migrate.record_unserved(loaded, unserved)


def exec_supervisord(loaded: Settings, args: list[str]) -> None:
    os.environ.update(paths.supervisor_environment())
    os.environ[apache_runner.BZR_ROOT_VARIABLE] = str(loaded.bzr_root)
    os.environ[passwords.USERS_FILE_VARIABLE] = str(loaded.htpasswd_path)
    os.execv(
        sys.executable,
        [
            sys.executable,
            "-m",
            "trac_breezy.startup.supervisor",
            "-c",
            str(paths.SUPERVISORD_CONF),
            *args,
        ],
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] != DEFAULT_COMMAND:
        os.execvp(args[0], args)
    try:
        loaded, server = prepare(os.environ)
        # As the server user from here on, so Trac's files belong to it.
        identity.become(server)
        # Held (inherited by supervisord) for the container's life; before any
        # project is touched.
        sqlite_guard.hold(loaded)
        prepare_volumes(loaded)
    except settings.SettingsError as error:
        for message in error.messages:
            log(f"error: {message}")
        return EXIT_CONFIG
    except (
        StartupError,
        apache_config.ConfigError,
        AdminError,
        identity.RootRefused,
        sqlite_guard.SQLiteShared,
    ) as error:
        log(f"error: {error}")
        return EXIT_CONFIG
    exec_supervisord(loaded, args[1:])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
