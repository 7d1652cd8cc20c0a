"""Container entrypoint: environment variables in, a checked Apache config out.

Modelled on docker-library's entrypoints: with the default command
(`supervisord`) it validates every setting (trac_breezy.settings), checks the
volumes, renders apache/httpd.conf.j2, lets Apache check the result, drops root
for the user that owns the data, and execs supervisord. Any other command is
exec'ed as given, so `docker run IMAGE bash` gives a shell.

Every problem ends here with one line naming the cause and the fix, and a
non-zero exit, before Apache starts. Nothing in the volumes is changed: no
chown, no chmod, no file written.
"""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import secrets
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2

from trac_breezy import database, log, projects, settings, trac_repositories, upgrade, users
from trac_breezy.settings import HEALTH_TOKEN_FILE, READ_ONLY, READ_WRITE, REALM, RUN_DIR

SHARE_DIR = Path("/usr/share/trac-breezy")
DEFAULT_UID = DEFAULT_GID = 33  # www-data in Debian
EXIT_CONFIG = 2


class StartupError(Exception):
    """Something that keeps the container from serving; the text says what to do."""


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int


# -- who runs the servers -----------------------------------------------------


def resolve_identity(values: Mapping[str, str], running_as: Identity) -> Identity:
    """The user Apache and the apps run as.

    Not root at start (compose `user:`): whoever we are. Else PUID/PGID, else
    the owner of BZR_ROOT when that is not root (so pushed files are owned like
    the rest of a mounted tree), else www-data.
    """
    if running_as.uid != 0:
        return running_as
    try:
        owner = os.stat(values["BZR_ROOT"])
        detected = Identity(owner.st_uid, owner.st_gid) if owner.st_uid != 0 else None
    except OSError:
        detected = None
    if values["PUID"]:
        uid = int(values["PUID"])
        gid = int(values["PGID"]) if values["PGID"] else primary_gid(uid)
        return Identity(uid, gid)
    base = detected or Identity(DEFAULT_UID, DEFAULT_GID)
    return Identity(base.uid, int(values["PGID"]) if values["PGID"] else base.gid)


def primary_gid(uid: int) -> int:
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid


# -- the volumes ---------------------------------------------------------------


def check_directory(name: str, path: str, identity: Identity, need_write: bool) -> None:
    """BZR_ROOT / TRAC_ENV_PARENT_DIR must exist and be usable by `identity`."""
    what = f"{name}={path}"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise StartupError(f"{what} does not exist; mount a volume there or set {name}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StartupError(f"{what} is not a directory; mount a directory there")
    needed = os.R_OK | os.X_OK | (os.W_OK if need_write else 0)
    if not can_access(info, identity, needed):
        access = "read and write" if need_write else "read"
        raise StartupError(
            f"{what} is owned by {info.st_uid}:{info.st_gid} with mode "
            f"{stat.filemode(info.st_mode)}, which user {identity.uid}:{identity.gid} cannot "
            f"{access}; set PUID/PGID to its owner or give that user access"
        )


def can_access(info: os.stat_result, identity: Identity, needed: int) -> bool:
    """Unix permission check of `info` for `identity` (without switching user)."""
    if identity.uid == 0:
        return True
    if info.st_uid == identity.uid:
        shift = 6
    elif info.st_gid == identity.gid or info.st_gid in supplementary_gids(identity):
        shift = 3
    else:
        shift = 0
    bits = (info.st_mode >> shift) & 7
    return bits & needed == needed


def supplementary_gids(identity: Identity) -> set[int]:
    try:
        name = pwd.getpwuid(identity.uid).pw_name
    except KeyError:
        return set()
    return {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}


# -- rendering -----------------------------------------------------------------


def template_context(values: Mapping[str, str], health_token: str) -> dict[str, object]:
    """Everything apache/httpd.conf.j2 refers to."""
    return {
        **values,
        "bzr_mode": READ_WRITE if settings.as_bool(values["BZR_ALLOW_WRITES"]) else READ_ONLY,
        "anonymous_read": settings.as_bool(values["BZR_ANONYMOUS_READ"]),
        "realm": REALM,
        "health_token": health_token,
        "setenv": {loc: settings.setenv_directives(values, loc) for loc in ("trac", "bzr")},
        "run_dir": str(RUN_DIR),
        "home_dir": str(RUN_DIR / "home"),
        "egg_cache": str(RUN_DIR / "egg-cache"),
        "empty_dir": str(SHARE_DIR / "empty"),
        "wsgi_dir": str(SHARE_DIR / "wsgi"),
        "trac_htdocs": trac_htdocs(),
        "wsgi_module_conf": str(SHARE_DIR / "apache" / "wsgi-module.conf"),
        # Straight to the container's stdout/stderr (PID 1's), not through
        # supervisord's pipes, which would make supervisord copy every line.
        "access_log": "/proc/1/fd/1",
        "error_log": "/proc/1/fd/2",
    }


def make_health_token() -> str:
    """A secret that lets the healthcheck past `BZR_ANONYMOUS_READ=false`.

    Made at each start, readable only by whoever started the container (the
    healthcheck runs as that user); Apache gets it in its configuration.
    """
    token = secrets.token_hex(16)
    HEALTH_TOKEN_FILE.unlink(missing_ok=True)
    HEALTH_TOKEN_FILE.touch(mode=0o600)
    HEALTH_TOKEN_FILE.write_text(token + "\n")
    return token


def trac_htdocs() -> str:
    """Trac's static files, in the installed package (found without importing Trac)."""
    spec = importlib.util.find_spec("trac")
    if spec is None or not spec.submodule_search_locations:
        raise StartupError("Trac is not installed in this image's Python; rebuild the image")
    return str(Path(next(iter(spec.submodule_search_locations))) / "htdocs")


def render_httpd_conf(context: Mapping[str, object]) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(SHARE_DIR / "apache")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - Apache config, not HTML; values were validated
    )
    return environment.get_template("httpd.conf.j2").render(context)


# -- the process ------------------------------------------------------------------


def prepare_run_dir(identity: Identity) -> None:
    for path in (RUN_DIR, RUN_DIR / "home", RUN_DIR / "egg-cache"):
        path.mkdir(mode=0o755, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, identity.uid, identity.gid)
    # Tells the admin commands (run as root by `docker compose exec`) whom
    # the files they write must belong to.
    users.IDENTITY_FILE.write_text(f"{identity.uid}:{identity.gid}\n")


def prepare_users(values: Mapping[str, str]) -> None:
    """The htpasswd file exists; ADMIN_USER is in it; say so when nobody is."""
    htpasswd = Path(values["HTPASSWD_PATH"])
    if not htpasswd.parent.is_dir():
        raise StartupError(
            f"HTPASSWD_PATH={htpasswd}: the directory {htpasswd.parent} does not exist; "
            "mount a volume there (compose.yaml does) or set HTPASSWD_PATH"
        )
    try:
        users.ensure_file(htpasswd)
        users.hand_to_server(htpasswd)
        admin = values["ADMIN_USER"]
        if admin and admin not in users.list_users(htpasswd):
            users.set_password(htpasswd, admin, values["ADMIN_PASSWORD"], new=True)
            log(f"created user {admin} from ADMIN_USER")
    except (OSError, users.UserError) as error:
        raise StartupError(f"HTPASSWD_PATH={htpasswd}: {error}") from None
    if not users.list_users(htpasswd) and settings.as_bool(values["BZR_ALLOW_WRITES"]):
        log(
            "no users yet, so nobody can push: add one with "
            "`docker compose exec web trac-breezy-user add NAME`, or set ADMIN_USER and "
            "ADMIN_PASSWORD_FILE"
        )


def hand_over_stdio(identity: Identity) -> None:
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
            os.fchown(fd, identity.uid, identity.gid)


def ensure_passwd_entry(identity: Identity) -> None:
    """Give an unknown uid a name: Apache and mod_wsgi look the user up."""
    try:
        pwd.getpwuid(identity.uid)
        return
    except KeyError:
        pass
    with open("/etc/passwd", "a", encoding="utf-8") as passwd:
        passwd.write(
            f"trac-breezy:x:{identity.uid}:{identity.gid}:trac-breezy:{RUN_DIR / 'home'}:"
            "/usr/sbin/nologin\n"
        )


def user_name(identity: Identity) -> str:
    try:
        return pwd.getpwuid(identity.uid).pw_name
    except KeyError:
        return "trac-breezy"


def drop_privileges(identity: Identity) -> None:
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(identity.gid)
    os.setuid(identity.uid)


def apache_configtest(conf: Path) -> None:
    result = subprocess.run(
        ["/usr/sbin/apache2", "-t", "-f", str(conf)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())
        raise StartupError(f"Apache refused the rendered configuration {conf}: {detail}")


def prepare(environ: Mapping[str, str]) -> tuple[dict[str, str], Identity]:
    """Validate, check and render; returns the settings and the identity to run as."""
    values = settings.load(environ)
    running_as = Identity(os.geteuid(), os.getegid())
    identity = resolve_identity(values, running_as)
    writes = settings.as_bool(values["BZR_ALLOW_WRITES"])
    check_directory("BZR_ROOT", values["BZR_ROOT"], identity, need_write=writes)
    check_directory("TRAC_ENV_PARENT_DIR", values["TRAC_ENV_PARENT_DIR"], identity, False)
    prepare_run_dir(identity)
    prepare_users(values)
    conf = RUN_DIR / "httpd.conf"
    conf.write_text(render_httpd_conf(template_context(values, make_health_token())))
    apache_configtest(conf)
    if running_as.uid == 0:
        ensure_passwd_entry(identity)
        hand_over_stdio(identity)
    mode = "pushes need a password" if writes else "read-only: BZR_ALLOW_WRITES is false"
    log(
        f"serving Trac at {values['TRAC_URL_PATH']}/ and Bazaar at {values['BZR_URL_PATH']}/ "
        f"({mode}) on port {values['LISTEN_PORT']} as uid {identity.uid} gid {identity.gid}"
    )
    return values, identity


def prepare_trac(values: Mapping[str, str]) -> None:
    """The database reachable, old projects upgraded, new ones made and connected."""
    database.connect_to_server(values)
    upgrade.upgrade_all(values)
    if values["TRAC_PROJECTS"]:
        projects.create_from_setting(values)
    if values["TRAC_REPOSITORIES"]:
        trac_repositories.configure(values)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] != "supervisord":
        os.execvp(args[0], args)
    try:
        values, identity = prepare(os.environ)
    except settings.SettingsError as error:
        for message in error.messages:
            log(f"error: {message}")
        return EXIT_CONFIG
    except StartupError as error:
        log(f"error: {error}")
        return EXIT_CONFIG
    drop_privileges(identity)
    os.environ["HOME"] = str(RUN_DIR / "home")
    try:  # as the server user, so Trac's files belong to it
        prepare_trac(values)
    except (
        database.DatabaseError,
        upgrade.UpgradeError,
        projects.ProjectError,
        trac_repositories.ConfigurationError,
    ) as error:
        log(f"error: {error}")
        return EXIT_CONFIG
    # Breezy names lock holders after the user; a uid without a passwd entry
    # (compose `user:`) would otherwise fail every lock with "No username".
    os.environ["USER"] = os.environ["LOGNAME"] = user_name(identity)
    supervisor_conf = str(SHARE_DIR / "supervisord.conf")
    os.execv(
        sys.executable,
        [sys.executable, "-m", "trac_breezy.supervisor_main", "-c", supervisor_conf, *args[1:]],
    )
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
