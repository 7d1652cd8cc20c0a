"""Users' mail addresses: recorded once beside the users file, seen by every project.

Trac looks for a user's address in each project's own database: the `email`
attribute of the user's authenticated session, which its Preferences page
sets. Its notifications read it there (`RecipientMatcher` takes the known
users straight from the session table; no extension point is asked for a
user Trac knows), and so do the "assign to" list and the user's preferences.
A component reading a shared file would miss all of that, so the address is
written where Trac reads it:

- `trac-breezy-user add NAME --email ADDR` and `trac-breezy-user email NAME
  ADDR` record it in `HTPASSWD_PATH.emails` (`name:address` lines, backed up
  with the users) and write it into every project at once;
- at start, every project gets the recorded address of each user it has no
  address for (a project mounted or created since, a restored backup). An
  address a user chose in a project's Preferences stays, until the command
  records another.

Users without an address get `NAME@SMTP_DEFAULT_DOMAIN` from Trac, when set.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from trac_breezy import log, one_line, replace_file
from trac_breezy.admin import AdminError
from trac_breezy.admin.trac_env import list_projects
from trac_breezy.container import checks
from trac_breezy.container.settings import Settings

SUFFIX = ".emails"


class EmailError(AdminError):
    """An address that cannot be recorded; the text says why."""


def record_path(htpasswd: Path) -> Path:
    """The address file that belongs to the users file `htpasswd`."""
    return htpasswd.with_name(htpasswd.name + SUFFIX)


def read(path: Path) -> dict[str, str]:
    """name -> address, as recorded (empty when nothing is)."""
    if not path.is_file():
        return {}
    addresses = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, colon, address = line.partition(":")
        if name and colon:
            addresses[name] = address.strip()
    return addresses


def write(path: Path, addresses: dict[str, str]) -> None:
    """Replace the record with `addresses`, never following a link planted there."""
    text = "".join(f"{name}:{address}\n" for name, address in sorted(addresses.items()))
    replace_file(path, text, 0o640)


def check_address(name: str, address: str) -> None:
    problem = checks.email_address(address)
    if problem:
        raise EmailError(f"the address {address!r} of {name} {problem}")


def record(path: Path, name: str, address: str | None) -> None:
    """Record `address` for `name` (None forgets it)."""
    addresses = read(path)
    if address is None:
        addresses.pop(name, None)
    else:
        check_address(name, address)
        addresses[name] = address
    write(path, addresses)


def set_in_project(env_path: Path, addresses: dict[str, str], *, replace: bool) -> list[str]:
    """Write the addresses into one project's sessions; the names that changed.

    Without `replace`, an address the project has already is kept.
    """
    from trac.env import open_environment
    from trac.web.session import DetachedSession

    changed = []
    env = open_environment(str(env_path), use_cache=False)
    try:
        for name, address in sorted(addresses.items()):
            session = DetachedSession(env, name)
            current = session.get("email", "")
            if current != address and (replace or not current):
                session["email"] = address
                session.save()
                changed.append(name)
    finally:
        env.shutdown()
    return changed


def set_everywhere(loaded: Settings, name: str, address: str) -> list[str]:
    """The command: `name`'s address in every project; the projects, or why not, per line."""
    parent = loaded.trac_env_parent_dir
    done = []
    for project in list_projects(parent):
        try:
            set_in_project(parent / project, {name: address}, replace=True)
            done.append(project)
        except Exception as error:  # Trac raises anything; the other projects go on
            done.append(f"{project} (not changed: {one_line(error)})")
    return done


def fill_in_at_start(loaded: Settings, skip: Collection[str] = ()) -> None:
    """Every project (but those in `skip`, not served) gets the recorded
    address of each user it has none for."""
    path = record_path(loaded.htpasswd_path)
    addresses = read(path)
    if not addresses:
        return
    parent = loaded.trac_env_parent_dir
    for project in list_projects(parent):
        if project in skip:
            continue
        try:
            changed = set_in_project(parent / project, addresses, replace=False)
        except Exception as error:  # logged: one project's trouble stops no other
            log(f"{project}: could not set users' mail addresses: {one_line(error)}")
            continue
        if changed:
            log(f"{project}: mail addresses of {', '.join(changed)} set from {path}")
