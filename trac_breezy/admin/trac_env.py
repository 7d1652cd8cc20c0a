"""Trac environments as the admin tasks see them: find, open, run `trac-admin`.

Creating projects, connecting repositories, upgrading and backing up all ask
the same questions of a directory (is it a Trac environment? which are
there?) and enable the same components; they are answered here once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trac_breezy import one_line

TRAC_ADMIN = str(Path(sys.executable).with_name("trac-admin"))

# What a project needs for Bazaar: our components (the `bzr` backend, logout)
# and Trac's commit ticket updater, which reads "refs #N" / "fixes #N" in the
# revisions the push announcer reports.
COMPONENTS = ("trac_breezy.*", "tracopt.ticket.commit_updater.*")


def trac_admin(env_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `trac-admin ENV ARGS...`, output captured."""
    return subprocess.run(
        [TRAC_ADMIN, str(env_path), *args], capture_output=True, text=True, check=False
    )


def last_words(result: subprocess.CompletedProcess[str]) -> str:
    """The end of what a failed command said, on one line."""
    return one_line(result.stderr or result.stdout)[-500:]


def is_project(path: Path) -> bool:
    """Trac writes VERSION into every environment it makes."""
    return (path / "VERSION").is_file()


def list_projects(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if is_project(p)) if parent.is_dir() else []
