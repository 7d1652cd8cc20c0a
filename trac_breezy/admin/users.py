"""Users of the Bazaar and Trac side: Apache's htpasswd file, with bcrypt.

One file serves Apache's Basic auth for pushes and for Trac's login. Writing it
is left to Apache's own `htpasswd` tool (bcrypt, `-B`), which also locks and
rewrites the file safely; this module adds the checks and the prompts, and is
the admin command:

    docker compose exec web trac-breezy-user add alice [--email alice@example.org]
    docker compose exec web trac-breezy-user passwd alice
    docker compose exec web trac-breezy-user email alice [ADDRESS | --remove]
    docker compose exec web trac-breezy-user remove alice
    docker compose exec web trac-breezy-user list

A user's mail address is recorded beside the file and written into every
Trac project (`emails.py` says where and why).

Passwords are read from the terminal (asked twice) or, with
`--password-stdin`, from standard input; never from the command line, where
other processes could see them.

Who writes the file: the servers' user whenever it may change the folder the
file lives in (then root must not: it could be made to follow a link the
servers' user planted there); root only when the servers' user can change
nothing in that folder (a volume that belongs to someone else, e.g. the
default `auth` volume when PUID is another user), and then root hands the
file to the servers' user without following any link.
"""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
from pathlib import Path

from trac_breezy import log, one_line, open_regular
from trac_breezy.admin import AdminError, command, emails, users_file
from trac_breezy.container import checks, identity
from trac_breezy.container.identity import Identity
from trac_breezy.container.settings import Settings

HTPASSWD = "/usr/bin/htpasswd"
# bcrypt cost of new and changed passwords (OWASP asks at least 10). Apache
# checks the password of every request, and a push makes dozens, so it was 5;
# Apache's provider (trac_breezy/passwords.py) now remembers a good password
# for a minute, so a push pays it once (docs/benchmarks.md). Hashes of other
# costs and kinds in a mounted file keep working.
BCRYPT_COST = 10


class UserError(AdminError):
    """A request the user database cannot carry out; the text says why."""


def check_password(password: str) -> str | None:
    if not password:
        return "must not be empty"
    if checks.has_control_characters(password):
        return "must not contain line breaks or other control characters"
    return None


def list_users(htpasswd: Path) -> list[str]:
    """The users, as Apache reads the file (comments, blank lines, a byte
    order mark and Windows line endings are no users: users_file.py)."""
    if not htpasswd.exists():
        return []
    return users_file.names(htpasswd.read_bytes())


def drop_byte_order_mark(htpasswd: Path) -> None:
    """Apache's `htpasswd` reads a first line that starts with a byte order
    mark (a Windows editor's) as another user's, and would add a second line
    for that user, which the first would shadow: the mark goes first. (Apache
    on Windows skips the mark, and so does our provider, passwords.py.)"""
    fd = os.open(htpasswd, os.O_RDWR | os.O_NOFOLLOW)
    with open(fd, "r+b") as users:
        data = users.read()
        if data.startswith(users_file.BOM):
            users.seek(0)
            users.write(data[len(users_file.BOM) :])
            users.truncate()


def _run_htpasswd(args: list[str], password: str | None = None) -> None:
    result = subprocess.run(
        [HTPASSWD, *args], input=password, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise UserError(f"htpasswd failed: {one_line(result.stderr)}")


def make_decoy() -> str:
    """A decoy bcrypt hash, of a random password nobody knows, at the users'
    cost: Apache checks unknown user names against it (trac_breezy/passwords.py),
    so they cost what a wrong password does."""
    import secrets

    result = subprocess.run(
        [HTPASSWD, "-n", "-i", "-B", "-C", str(BCRYPT_COST), "decoy"],
        input=secrets.token_hex(24),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise UserError(f"htpasswd failed: {one_line(result.stderr)}")
    return result.stdout.strip().split(":", 1)[1]


def ensure_file(htpasswd: Path) -> None:
    """Create an empty user file, readable by Apache (its owner) and nobody else.

    A FIFO there is refused, not waited on (opened for writing, it would
    block the start until something read it).
    """
    os.close(open_regular(htpasswd, os.O_RDWR | os.O_CREAT, 0o640))


def servers_keep_the_file(htpasswd: Path, server: Identity) -> bool:
    """May the servers' user change the folder of the users file? Then it
    writes the file itself (see the module docstring)."""
    info = htpasswd.parent.stat()
    return identity.can_access(info, server, os.W_OK | os.X_OK)


def hand_file_to(htpasswd: Path, server: Identity) -> None:
    """Root wrote the file: let Apache (the servers' user) read it, nobody else."""
    fd = os.open(htpasswd, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, server.uid, server.gid)
        os.fchmod(fd, 0o640)
    finally:
        os.close(fd)


def work_on_the_file(htpasswd: Path, server: Identity) -> bool:
    """Become the servers' user if it keeps the file; True if root must hand it over."""
    if os.geteuid() != 0:
        return False
    if servers_keep_the_file(htpasswd, server):
        identity.become(server)
        return False
    return True


def set_password(htpasswd: Path, name: str, password: str, *, new: bool) -> None:
    problem = checks.user_name(name) or check_password(password)
    if problem:
        raise UserError(f"user {name!r}: name or password {problem}")
    exists = name in list_users(htpasswd)
    if new and exists:
        raise UserError(f"user {name!r} exists already; change the password with `passwd`")
    if not new and not exists:
        raise UserError(f"there is no user {name!r}; create it with `add`")
    ensure_file(htpasswd)
    drop_byte_order_mark(htpasswd)
    _run_htpasswd(["-i", "-B", "-C", str(BCRYPT_COST), str(htpasswd), name], password)


def remove_user(htpasswd: Path, name: str) -> None:
    if name not in list_users(htpasswd):
        raise UserError(f"there is no user {name!r}")
    _run_htpasswd(["-D", str(htpasswd), name])


def prepare_at_start(loaded: Settings, server: Identity) -> None:
    """The htpasswd file exists; ADMIN_USER is in it; say so when nobody is.

    Run in a child process: it may become the servers' user (see the module
    docstring), which the entrypoint does only later.
    """
    htpasswd = loaded.htpasswd_path
    if not htpasswd.parent.is_dir():
        raise UserError(
            f"HTPASSWD_PATH={htpasswd}: the directory {htpasswd.parent} does not exist; "
            "mount a volume there (compose.yaml does) or set HTPASSWD_PATH"
        )
    problem = identity.run_in_child(lambda: _prepare(loaded, server))
    if problem:
        raise UserError(problem)


def _prepare(loaded: Settings, server: Identity) -> None:
    htpasswd = loaded.htpasswd_path
    try:
        hand_over = work_on_the_file(htpasswd, server)
        ensure_file(htpasswd)
        admin = loaded.admin_user
        if admin and admin not in list_users(htpasswd):
            set_password(htpasswd, admin, loaded.admin_password, new=True)
            log(f"created user {admin} from ADMIN_USER")
        if hand_over:
            hand_file_to(htpasswd, server)
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


def note_address(htpasswd: Path, name: str, address: str | None) -> None:
    """Record (or, with None, forget) `name`'s address beside the users file."""
    if address is not None and name not in list_users(htpasswd):
        raise UserError(f"there is no user {name!r}; create it with `add`")
    record = emails.record_path(htpasswd)
    if address is not None or name in emails.read(record):
        emails.record(record, name, address)


def address_everywhere(loaded: Settings, server: Identity, name: str, address: str) -> None:
    """`name`'s address into every project, as the servers' user (a child, when root)."""

    def everywhere() -> None:
        if os.geteuid() == 0:
            identity.become(server)
        projects = emails.set_everywhere(loaded, name, address)
        print(f"{name} <{address}> in: {', '.join(projects) or 'no project yet'}")

    problem = None
    if os.geteuid() == 0:
        problem = identity.run_in_child(everywhere)
    else:
        everywhere()
    if problem:
        raise UserError(f"recorded {name} <{address}>, but the projects did not take it: {problem}")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="trac-breezy-user", description="Manage the users who may push and log in to Trac."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the users")
    for name, text in (("add", "add a user"), ("passwd", "set a user's password")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("name")
        sub.add_argument("--password-stdin", action="store_true", help="read it from stdin")
        if name == "add":
            sub.add_argument("--email", help="the user's mail address, for Trac's notifications")
    commands.add_parser("remove", help="remove a user").add_argument("name")
    email = commands.add_parser("email", help="show, set or forget a user's mail address")
    email.add_argument("name")
    email.add_argument("address", nargs="?", help="the new address (every project gets it)")
    email.add_argument("--remove", action="store_true", help="forget the recorded address")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)

    def carry_out(loaded: Settings) -> None:
        address = args.address if args.command == "email" else getattr(args, "email", None)
        forget = args.command == "remove" or getattr(args, "remove", False)
        if address:
            emails.check_address(args.name, address)  # before anything changes
        # Asked first: the terminal belongs to whoever ran `docker compose exec`.
        password = ask_password(args.password_stdin) if args.command in ("add", "passwd") else ""
        path, server = loaded.htpasswd_path, identity.server_identity(loaded)
        record = emails.record_path(path)
        hand_over = work_on_the_file(path, server)
        if args.command == "list":
            print("\n".join(list_users(path)))
        elif args.command in ("add", "passwd"):
            set_password(path, args.name, password, new=args.command == "add")
            print(f"{'added' if args.command == 'add' else 'changed the password of'} {args.name}")
        elif args.command == "remove":
            remove_user(path, args.name)
            print(f"removed {args.name}")
        if address or forget:
            note_address(path, args.name, None if forget else address)
        elif args.command == "email":
            print(emails.read(record).get(args.name, "(no address recorded)"))
        if hand_over:
            for written in (path, record):
                if written.exists():
                    hand_file_to(written, server)
        if address and not forget:
            address_everywhere(loaded, server, args.name, address)

    return command.run("trac-breezy-user", carry_out)


if __name__ == "__main__":
    sys.exit(main())
