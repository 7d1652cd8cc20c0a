"""Users of the Bazaar and Trac side: Apache's htpasswd file, with bcrypt.

One file serves Apache's Basic auth for pushes and for Trac's login. Writing it
is left to Apache's own `htpasswd` tool (bcrypt, `-B`), which also locks and
rewrites the file safely; this module adds the checks, the prompts and the
ownership, and is the admin command:

    docker compose exec web trac-breezy-user add alice
    docker compose exec web trac-breezy-user passwd alice
    docker compose exec web trac-breezy-user remove alice
    docker compose exec web trac-breezy-user list

Passwords are read from the terminal (asked twice) or, with
`--password-stdin`, from standard input; never from the command line, where
other processes could see them.
"""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
from pathlib import Path

from trac_breezy import log, one_line
from trac_breezy.admin import AdminError, command
from trac_breezy.container import identity, settings
from trac_breezy.container.settings import Settings

HTPASSWD = "/usr/bin/htpasswd"
# bcrypt cost (htpasswd's own default). Apache verifies the password of every
# request it authenticates, and a push makes dozens: measured in this image,
# cost 7 added ~8 ms to each request (~6% of a 1,000-revision push), cost 5 ~2 ms.
BCRYPT_COST = 5


class UserError(AdminError):
    """A request the user database cannot carry out; the text says why."""


def check_password(password: str) -> str | None:
    if not password:
        return "must not be empty"
    if settings.has_control_characters(password):
        return "must not contain line breaks or other control characters"
    return None


def list_users(htpasswd: Path) -> list[str]:
    if not htpasswd.exists():
        return []
    lines = htpasswd.read_text(encoding="utf-8").splitlines()
    return [line.split(":", 1)[0] for line in lines if ":" in line]


def _run_htpasswd(args: list[str], password: str | None = None) -> None:
    result = subprocess.run(
        [HTPASSWD, *args], input=password, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise UserError(f"htpasswd failed: {one_line(result.stderr)}")


def hand_to_server(htpasswd: Path) -> None:
    """Root wrote the file: let the unprivileged Apache read it (and nobody else)."""
    server = identity.recorded_server_identity()
    if server:
        os.chown(htpasswd, server.uid, server.gid)
        htpasswd.chmod(0o640)


def ensure_file(htpasswd: Path) -> None:
    """Create an empty user file (callers hand it to the server user)."""
    if not htpasswd.exists():
        htpasswd.touch(mode=0o640)


def set_password(htpasswd: Path, name: str, password: str, *, new: bool) -> None:
    problem = settings.user_name(name) or check_password(password)
    if problem:
        raise UserError(f"user {name!r}: name or password {problem}")
    exists = name in list_users(htpasswd)
    if new and exists:
        raise UserError(f"user {name!r} exists already; change the password with `passwd`")
    if not new and not exists:
        raise UserError(f"there is no user {name!r}; create it with `add`")
    ensure_file(htpasswd)
    _run_htpasswd(["-i", "-B", "-C", str(BCRYPT_COST), str(htpasswd), name], password)
    hand_to_server(htpasswd)


def remove_user(htpasswd: Path, name: str) -> None:
    if name not in list_users(htpasswd):
        raise UserError(f"there is no user {name!r}")
    _run_htpasswd(["-D", str(htpasswd), name])
    hand_to_server(htpasswd)


def prepare_at_start(loaded: Settings) -> None:
    """The htpasswd file exists; ADMIN_USER is in it; say so when nobody is."""
    htpasswd = loaded.htpasswd_path
    if not htpasswd.parent.is_dir():
        raise UserError(
            f"HTPASSWD_PATH={htpasswd}: the directory {htpasswd.parent} does not exist; "
            "mount a volume there (compose.yaml does) or set HTPASSWD_PATH"
        )
    try:
        ensure_file(htpasswd)
        hand_to_server(htpasswd)
        admin = loaded.admin_user
        if admin and admin not in list_users(htpasswd):
            set_password(htpasswd, admin, loaded.admin_password, new=True)
            log(f"created user {admin} from ADMIN_USER")
    except (OSError, UserError) as error:
        raise UserError(f"HTPASSWD_PATH={htpasswd}: {error}") from None
    if not list_users(htpasswd) and loaded.bzr_allow_writes:
        log(
            "no users yet, so nobody can push: add one with "
            "`docker compose exec web trac-breezy-user add NAME`, or set ADMIN_USER and "
            "ADMIN_PASSWORD_FILE"
        )


def ask_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise UserError("the two passwords differ; nothing changed")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trac-breezy-user", description="Manage the users who may push and log in to Trac."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the users")
    for name, text in (("add", "add a user"), ("passwd", "set a user's password")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("name")
        sub.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    commands.add_parser("remove", help="remove a user").add_argument("name")
    args = parser.parse_args(argv)

    def carry_out(loaded: Settings) -> None:
        path = loaded.htpasswd_path
        if args.command == "list":
            print("\n".join(list_users(path)))
        elif args.command in ("add", "passwd"):
            password = ask_password(args.password_stdin)
            set_password(path, args.name, password, new=args.command == "add")
            print(f"{'added' if args.command == 'add' else 'changed the password of'} {args.name}")
        else:
            remove_user(path, args.name)
            print(f"removed {args.name}")

    return command.run("trac-breezy-user", carry_out)


if __name__ == "__main__":
    sys.exit(main())
