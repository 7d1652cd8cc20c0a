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

import os
from collections.abc import Mapping

from trac_breezy import log

COMPONENTS = ("trac_breezy.*", "tracopt.ticket.commit_updater.*")


class ConfigurationError(Exception):
    """An entry names something that is not there; the text says how to fix it."""


def parse(value: str) -> list[tuple[str, str, str]]:
    """(project, repository name, branch relpath) of each comma-separated entry."""
    entries = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        target, _, relpath = item.partition("=")
        project, _, repo = target.partition(":")
        entries.append((project, repo, relpath.strip("/")))
    return entries


def connect(env_path: str, repo: str, branch_dir: str) -> list[str]:
    """Enable what the backend needs in one project and add the repository."""
    from trac.env import open_environment
    from trac.versioncontrol.api import DbRepositoryProvider, RepositoryManager

    import trac_breezy.bzr_backend  # noqa: F401 - the `bzr` connector

    changes = []
    env = open_environment(env_path, use_cache=False)
    for component in COMPONENTS:
        if env.config.get("components", component) != "enabled":
            env.config.set("components", component, "enabled")
            changes.append(f"enabled {component}")
    if changes:
        env.config.save()
        env.shutdown()
        env = open_environment(env_path, use_cache=False)
    name = repo or "(default)"
    if (repo or "") not in RepositoryManager(env).get_all_repositories():
        DbRepositoryProvider(env).add_repository(repo, branch_dir, "bzr")
        changes.append(f"added repository {name} at {branch_dir}")
    env.shutdown()
    return changes


def configure(values: Mapping[str, str]) -> None:
    """Carry out TRAC_REPOSITORIES; raises ConfigurationError for a missing project."""
    for project, repo, relpath in parse(values["TRAC_REPOSITORIES"]):
        env_path = os.path.join(values["TRAC_ENV_PARENT_DIR"], project)
        if not os.path.isfile(os.path.join(env_path, "VERSION")):
            raise ConfigurationError(
                f"TRAC_REPOSITORIES names project {project!r}, but {env_path} is no Trac "
                f"environment; create it (trac-admin {env_path} initenv) or fix TRAC_REPOSITORIES"
            )
        branch_dir = os.path.join(values["BZR_ROOT"], relpath) if relpath else values["BZR_ROOT"]
        if not os.path.isdir(branch_dir):
            log(f"TRAC_REPOSITORIES: {branch_dir} does not exist yet; Trac shows it once pushed")
        for change in connect(env_path, repo, branch_dir):
            log(f"{project}: {change}")
