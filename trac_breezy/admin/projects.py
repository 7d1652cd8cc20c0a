"""Trac projects: create them with one command, or from TRAC_PROJECTS at start.

A project is a Trac environment directory under TRAC_ENV_PARENT_DIR; Trac's
index at /trac/ lists every one, so a new project appears without a restart.
A new project gets what this container needs and Trac's defaults otherwise:
logging to stderr (it reaches `docker logs`), the Bazaar backend and the
commit ticket updater enabled, `base_url` from TRAC_BASE_URL when set, and
`TRAC_ADMIN` for ADMIN_USER. It inherits the shared trac.ini from the start
(`initenv --inherit`: Trac then writes only what differs into the project's
own, so no written-out default hides a shared value, and plugins enabled
there set up their tables with the project). Existing projects are never
changed here.

    docker compose exec web trac-breezy-project create NAME ["Title"]
    docker compose exec web trac-breezy-project list

Run as root (as `docker compose exec` does), the command works as the
server's user, so Apache can write the project it creates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trac_breezy import log
from trac_breezy.admin import AdminError, command, postgres
from trac_breezy.admin.trac_env import COMPONENTS, is_project, last_words, list_projects, trac_admin
from trac_breezy.container import checks, identity, paths
from trac_breezy.container.settings import Settings

NEW_PROJECT_OPTIONS = (
    ("logging", "log_type", "stderr"),
    ("logging", "log_level", "WARNING"),
    # Trac's default logo is a placeholder file that does not exist
    # (site/your_project_logo.png): every page would cost a 404.
    ("header_logo", "src", ""),
    *(("components", component, "enabled") for component in COMPONENTS),
)


class ProjectError(AdminError):
    """The project cannot be created; the text says why."""


def check_name(name: str) -> str | None:
    if not checks.PROJECT_NAME.match(name):
        return "must be 1-64 letters, digits or . _ -, starting with a letter or digit"
    return None


def create(
    loaded: Settings, name: str, title: str = "", global_ini: Path = paths.TRAC_GLOBAL_INI
) -> bool:
    """Create project `name` unless it exists; True if it was created."""
    problem = check_name(name)
    if problem:
        raise ProjectError(f"project name {name!r} {problem}")
    path = loaded.trac_env_parent_dir / name
    if is_project(path):
        return False
    if path.exists() and any(path.iterdir()):
        raise ProjectError(f"{path} exists and is not a Trac environment; choose another name")
    database = postgres.new_project_uri(loaded, name)
    result = trac_admin(path, "initenv", title or name, database, f"--inherit={global_ini}")
    if result.returncode != 0:
        raise ProjectError(f"trac-admin initenv failed: {last_words(result)}")
    configure_new(path, loaded)
    return True


def configure_new(path: Path, loaded: Settings) -> None:
    from trac.env import open_environment
    from trac.perm import PermissionSystem

    env = open_environment(str(path), use_cache=False)
    options = list(NEW_PROJECT_OPTIONS)
    if loaded.trac_base_url:
        base = loaded.trac_base_url.rstrip("/")
        options.append(("trac", "base_url", f"{base}/{path.name}"))
    for section, key, value in options:
        env.config.set(section, key, value)
    env.config.save()
    if loaded.admin_user:
        PermissionSystem(env).grant_permission(loaded.admin_user, "TRAC_ADMIN")
    env.shutdown()


def create_from_setting(loaded: Settings) -> None:
    """TRAC_PROJECTS at start: create the missing ones, say which."""
    for name in loaded.trac_projects:
        if create(loaded, name):
            log(f"created Trac project {name} (from TRAC_PROJECTS)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trac-breezy-project", description="Trac projects.")
    commands = parser.add_subparsers(dest="command", required=True)
    create_parser = commands.add_parser("create", help="create a project")
    create_parser.add_argument("name")
    create_parser.add_argument("title", nargs="?", default="")
    commands.add_parser("list", help="list the projects")
    args = parser.parse_args(argv)

    def carry_out(loaded: Settings) -> None:
        identity.become(identity.server_identity(loaded))
        if args.command == "list":
            print("\n".join(list_projects(loaded.trac_env_parent_dir)))
        elif create(loaded, args.name, args.title):
            print(f"created {args.name}: {loaded.trac_url_path}/{args.name}/")
        else:
            print(f"{args.name} exists already; nothing changed")

    return command.run("trac-breezy-project", carry_out)


if __name__ == "__main__":
    sys.exit(main())
