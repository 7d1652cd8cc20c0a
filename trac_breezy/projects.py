"""Trac projects: create them with one command, or from TRAC_PROJECTS at start.

A project is a Trac environment directory under TRAC_ENV_PARENT_DIR; Trac's
index at /trac/ lists every one, so a new project appears without a restart.
A new project gets what this container needs and Trac's defaults otherwise:
logging to stderr (it reaches `docker logs`), the Bazaar backend and the
commit ticket updater enabled, `base_url` from TRAC_BASE_URL when set, and
`TRAC_ADMIN` for ADMIN_USER. Existing projects are never changed here.

    docker compose exec web trac-breezy-project create NAME ["Title"]
    docker compose exec web trac-breezy-project list

Run as root (as `docker compose exec` does), the command works as the
server's user, so Apache can write the project it creates.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from trac_breezy import database, log, settings, users

TRAC_ADMIN = str(Path(sys.executable).with_name("trac-admin"))
NEW_PROJECT_OPTIONS = (
    ("logging", "log_type", "stderr"),
    ("logging", "log_level", "WARNING"),
    # Trac's default logo is a placeholder file that does not exist
    # (site/your_project_logo.png): every page would cost a 404.
    ("header_logo", "src", ""),
    ("components", "trac_breezy.*", "enabled"),
    ("components", "tracopt.ticket.commit_updater.*", "enabled"),
)


class ProjectError(Exception):
    """The project cannot be created; the text says why."""


def trac_admin(env_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `trac-admin ENV ARGS...`, output captured."""
    return subprocess.run(
        [TRAC_ADMIN, str(env_path), *args], capture_output=True, text=True, check=False
    )


def last_words(result: subprocess.CompletedProcess[str]) -> str:
    """The end of what a failed command said, on one line."""
    return " ".join((result.stderr or result.stdout).split())[-500:]


def check_name(name: str) -> str | None:
    if not settings.PROJECT_NAME.match(name):
        return "must be 1-64 letters, digits or . _ -, starting with a letter or digit"
    return None


def is_project(path: Path) -> bool:
    return (path / "VERSION").is_file()


def list_projects(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if is_project(p)) if parent.is_dir() else []


def create(values: Mapping[str, str], name: str, title: str = "") -> bool:
    """Create project `name` unless it exists; True if it was created."""
    problem = check_name(name)
    if problem:
        raise ProjectError(f"project name {name!r} {problem}")
    path = Path(values["TRAC_ENV_PARENT_DIR"]) / name
    if is_project(path):
        return False
    if path.exists() and any(path.iterdir()):
        raise ProjectError(f"{path} exists and is not a Trac environment; choose another name")
    result = trac_admin(path, "initenv", title or name, database.new_project_uri(values, name))
    if result.returncode != 0:
        raise ProjectError(f"trac-admin initenv failed: {last_words(result)}")
    configure_new(path, values)
    return True


def configure_new(path: Path, values: Mapping[str, str]) -> None:
    from trac.env import open_environment
    from trac.perm import PermissionSystem

    env = open_environment(str(path), use_cache=False)
    options = list(NEW_PROJECT_OPTIONS)
    if values["TRAC_BASE_URL"]:
        base = values["TRAC_BASE_URL"].rstrip("/")
        options.append(("trac", "base_url", f"{base}/{path.name}"))
    for section, key, value in options:
        env.config.set(section, key, value)
    env.config.save()
    if values["ADMIN_USER"]:
        PermissionSystem(env).grant_permission(values["ADMIN_USER"], "TRAC_ADMIN")
    env.shutdown()


def create_from_setting(values: Mapping[str, str]) -> None:
    """TRAC_PROJECTS at start: create the missing ones, say which."""
    for name in filter(None, (n.strip() for n in values["TRAC_PROJECTS"].split(","))):
        if create(values, name):
            log(f"created Trac project {name} (from TRAC_PROJECTS)")


def server_owner(values: Mapping[str, str]) -> tuple[int, int]:
    """(uid, gid) the servers run as: as the entrypoint chose, or would choose.

    `docker compose exec` finds the entrypoint's choice in the run directory;
    `docker compose run` (a new container, no entrypoint setup) works it out
    the same way from the settings and the volumes.
    """
    from trac_breezy.entrypoint import Identity, resolve_identity  # imports this module

    known = users.server_identity()
    if known is not None:
        return known
    identity = resolve_identity(values, Identity(os.geteuid(), os.getegid()))
    return identity.uid, identity.gid


def become_server_user(values: Mapping[str, str]) -> None:
    """Root (docker compose exec/run) works as the user the servers run as."""
    from trac_breezy.entrypoint import Identity, drop_privileges, user_name

    identity = Identity(*server_owner(values))
    drop_privileges(identity)
    # Breezy names lock holders after the user and reads its configuration
    # from HOME, which must not be root's.
    os.environ["USER"] = os.environ["LOGNAME"] = user_name(identity)
    home = settings.RUN_DIR / "home"
    os.environ["HOME"] = str(home) if os.access(home, os.W_OK) else tempfile.gettempdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trac-breezy-project", description="Trac projects.")
    commands = parser.add_subparsers(dest="command", required=True)
    create_parser = commands.add_parser("create", help="create a project")
    create_parser.add_argument("name")
    create_parser.add_argument("title", nargs="?", default="")
    commands.add_parser("list", help="list the projects")
    args = parser.parse_args(argv)
    try:
        values = settings.load(os.environ)
        become_server_user(values)
        if args.command == "list":
            print("\n".join(list_projects(Path(values["TRAC_ENV_PARENT_DIR"]))))
        elif create(values, args.name, args.title):
            print(f"created {args.name}: {values['TRAC_URL_PATH']}/{args.name}/")
        else:
            print(f"{args.name} exists already; nothing changed")
    except (ProjectError, settings.SettingsError, OSError) as error:
        print(f"trac-breezy-project: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
