"""Connect Trac projects to Bazaar branches at start (`TRAC_REPOSITORIES`).

`TRAC_REPOSITORIES=code=code/trunk,docs:manual=docs` shows the branch (or
shared repository) `BZR_ROOT/code/trunk` as the default repository of the
project `code`, and `BZR_ROOT/docs` as repository `manual` of project `docs`.
For each entry the project gets the Bazaar backend and Trac's commit ticket
updater enabled and the repository added, the standard way
(`DbRepositoryProvider`, as `trac-admin ENV repository add` does). Only what
is missing is added, and the log says what changed; an existing repository of
that name is left alone, whatever it points to.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from trac_breezy import log
from trac_breezy.admin import AdminError
from trac_breezy.admin.trac_env import COMPONENTS, is_project
from trac_breezy.container.settings import Settings


class ConfigurationError(AdminError):
    """An entry names something that is not there; the text says how to fix it."""


def connect(env_path: Path, repo: str, branch_dir: Path) -> list[str]:
    """Enable what the backend needs in one project and add the repository."""
    from trac.env import open_environment
    from trac.versioncontrol.api import DbRepositoryProvider, RepositoryManager

    import trac_breezy.trac_app.bzr.connector  # noqa: F401 - the `bzr` connector

    changes = []
    env = open_environment(str(env_path), use_cache=False)
    for component in COMPONENTS:
        if env.config.get("components", component) != "enabled":
            env.config.set("components", component, "enabled")
            changes.append(f"enabled {component}")
    if changes:
        env.config.save()
        env.shutdown()
        env = open_environment(str(env_path), use_cache=False)
    name = repo or "(default)"
    if repo not in RepositoryManager(env).get_all_repositories():
        DbRepositoryProvider(env).add_repository(repo, str(branch_dir), "bzr")
        changes.append(f"added repository {name} at {branch_dir}")
    env.shutdown()
    return changes


def configure(loaded: Settings, skip: Collection[str] = ()) -> None:
    """Carry out TRAC_REPOSITORIES; raises ConfigurationError for a missing
    project. Projects in `skip` are not served (the start said why)."""
    for link in loaded.trac_repositories:
        if link.project in skip:
            log(f"TRAC_REPOSITORIES: {link.project} is not served, its repository waits")
            continue
        env_path = loaded.trac_env_parent_dir / link.project
        if not is_project(env_path):
            raise ConfigurationError(
                f"TRAC_REPOSITORIES names project {link.project!r}, but {env_path} is no Trac "
                f"environment; create it (trac-admin {env_path} initenv) or fix TRAC_REPOSITORIES"
            )
        branch_dir = loaded.bzr_root / link.branch if link.branch else loaded.bzr_root
        if not branch_dir.is_dir():
            log(f"TRAC_REPOSITORIES: {branch_dir} does not exist yet; Trac shows it once pushed")
        for change in connect(env_path, link.repository, branch_dir):
            log(f"{link.project}: {change}")
