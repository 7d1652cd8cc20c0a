"""Mounted data from an old host: the dry run, and a start that opens what it can.

A team moving in mounts twenty projects, a Bazaar tree and a users file as
its old host left them (docs/migration.md). At start every project is
repaired (`old_projects`) and upgraded (`upgrade`) on its own: one that
cannot be is left as it was (or put back from its copy), its one-line reason
goes to the log and to the front page, and the others are served. The
container stops only for what concerns all of them (settings, volumes).

    docker compose run --rm web trac-breezy-migrate --check

prints, per project and for the tree and the users file, what the start will
repair, upgrade, skip or refuse, writing nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from trac_breezy import log, one_line, replace_file
from trac_breezy.admin import command, old_projects, old_tree, upgrade, users_file
from trac_breezy.admin.findings import Action, Finding
from trac_breezy.admin.trac_env import list_projects
from trac_breezy.container import identity, paths
from trac_breezy.container.settings import Settings


def trac_database_version() -> int:
    from trac.db_default import db_version

    return int(db_version)


def check(loaded: Settings) -> list[Finding]:
    """What start-up will do with the mounted data; nothing is written."""
    parent = loaded.trac_env_parent_dir
    current = trac_database_version()
    findings: list[Finding] = []
    for name in list_projects(parent):
        planned = old_projects.plan(parent / name, loaded.bzr_root, current)
        findings += planned.findings or [Finding(f"project {name}", Action.OK, "served as it is")]
    findings += old_tree.inspect(loaded.bzr_root)
    findings += users_file.inspect(loaded.htpasswd_path)
    return findings


def open_projects(loaded: Settings) -> dict[str, str]:
    """At start, each project repaired and upgraded on its own; those that
    cannot be served, with why (one line each, also logged)."""
    parent = loaded.trac_env_parent_dir
    unserved: dict[str, str] = {}
    for name in list_projects(parent):
        try:
            reason = repair(parent / name, loaded)
        except Exception as error:  # whatever else: this project only, never the others
            reason = (
                f"its repairs failed ({type(error).__name__}: {one_line(error)}); it is left "
                "as it was (a trac.ini copy beside it if one was written); report this, fix it "
                "by hand and restart"
            )
        if reason:
            unserved[name] = reason
            log(f"error: {name}: {reason}")
    unserved.update(upgrade.upgrade_all(loaded, skip=unserved))
    return unserved


def repair(env_path: Path, loaded: Settings) -> str | None:
    """One project's repairs, logged; why it cannot be served, or None."""
    planned = old_projects.plan(env_path, loaded.bzr_root)
    if planned.refused:
        return f"{planned.refused}; fix it by hand and restart (docs/migration.md)"
    try:
        said = old_projects.carry_out(env_path, planned)
    except OSError as error:
        return (
            f"the repairs it needs could not be written ({one_line(error)}); "
            "give the servers' user write access to the project and restart"
        )
    if said:
        log(said)
    for finding in planned.findings:
        if finding.action is Action.SKIP:
            log(finding.line())
    return None


def log_users_file(loaded: Settings) -> None:
    """Lines of the users file that cannot work here, in the log at each start."""
    for finding in users_file.inspect(loaded.htpasswd_path):
        if finding.action is not Action.OK:
            log(finding.line())


def record_unserved(loaded: Settings, unserved: dict[str, str]) -> None:
    """The front page shows why each project is not served (`PROJECT_ERRORS`)."""
    replace_file(paths.PROJECT_ERRORS, json.dumps(unserved, indent=1, sort_keys=True), 0o644)
    if unserved:
        total = len(list_projects(loaded.trac_env_parent_dir))
        log(
            f"serving {total - len(unserved)} of {total} Trac projects; not "
            + ", ".join(sorted(unserved))
            + " (see above; each shows its error on the front page)"
        )


def print_check(findings: list[Finding], out: TextIO) -> None:
    for finding in findings:
        print(finding.line(), file=out)
    counts = {action: sum(f.action is action for f in findings) for action in Action}
    summary = ", ".join(f"{n} {action.value}" for action, n in counts.items() if n)
    print(f"summary: {summary or 'nothing mounted'}; nothing was written", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trac-breezy-migrate",
        description="Data mounted from an old host: what each start repairs and upgrades.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        required=True,
        help="print what the start will repair, upgrade, skip or refuse; write nothing",
    )
    parser.parse_args(argv)

    def carry_out(loaded: Settings) -> None:
        identity.become(identity.server_identity(loaded))  # see what the servers will see
        print_check(check(loaded), sys.stdout)

    return command.run("trac-breezy-migrate", carry_out)


if __name__ == "__main__":
    sys.exit(main())
