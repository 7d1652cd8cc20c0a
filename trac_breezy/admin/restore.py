"""Restore a `trac-breezy-backup` folder into fresh volumes: `trac-breezy-restore`.

    docker compose run --rm --no-deps web trac-breezy-restore /backup/trac-breezy-...

Restore never overwrites: it refuses a project, a schema or a top-level
Bazaar directory that already exists, and only adds users that are missing.
Everything is checked before anything is written (clashes, and every member
of the archive against tarfile's `data` filter), so a refused restore leaves
the volumes as they were and can be retried. It runs as the servers' user,
so what it writes belongs to them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
from pathlib import Path

from trac_breezy import log
from trac_breezy.admin import command, emails, postgres, users, users_file
from trac_breezy.admin.backup import BZR_ARCHIVE, HTPASSWD, BackupError
from trac_breezy.container import identity
from trac_breezy.container.settings import Settings

PROGRAM = "trac-breezy-restore"


def restore(loaded: Settings, source: Path) -> None:
    """Copy a backup folder into the volumes; refuses anything that exists."""
    postgres.connect_to_server(loaded)
    if not (source / BZR_ARCHIVE).is_file():
        raise BackupError(f"{source} is not a trac-breezy backup (no {BZR_ARCHIVE} in it)")
    parent = loaded.trac_env_parent_dir
    copies = sorted((source / "trac").iterdir()) if (source / "trac").is_dir() else []
    clashes = [c.name for c in copies if (parent / c.name).exists()]
    bzr_root = loaded.bzr_root
    with tarfile.open(source / BZR_ARCHIVE) as tar:
        members = tar.getmembers()
        unsafe = unsafe_members(members, bzr_root)
        if unsafe:
            raise BackupError(
                f"{source / BZR_ARCHIVE} holds what a restore must not write: "
                f"{'; '.join(unsafe[:5])}; nothing was restored (remove those members, e.g. "
                "with tar --delete, and run the restore again)"
            )
        top = {Path(m.name).parts[0] for m in members if m.name not in ("", ".")}
        clashes += [f"{bzr_root}/{t}" for t in sorted(top) if (bzr_root / t).exists()]
        if clashes:
            raise BackupError(
                f"these exist already and would be overwritten: {', '.join(clashes)}; restore "
                "into fresh volumes, or move them aside first"
            )
        for copy in copies:
            restore_project(copy, parent / copy.name)
        tar.extractall(bzr_root, filter="data")
    log(f"restored the Bazaar tree into {bzr_root} ({len(top)} top-level entries)")
    merge_users(source / HTPASSWD, loaded.htpasswd_path)
    merge_addresses(emails.record_path(source / HTPASSWD), emails.record_path(loaded.htpasswd_path))


def unsafe_members(members: list[tarfile.TarInfo], destination: Path) -> list[str]:
    """Members tarfile's `data` filter refuses (links out of the tree, devices, ...)."""
    unsafe = []
    for member in members:
        try:
            tarfile.data_filter(member, str(destination))
        except tarfile.FilterError as error:
            unsafe.append(f"{member.name} ({error})")
    return unsafe


def restore_project(copy: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.restoring")
    shutil.rmtree(partial, ignore_errors=True)
    dump = copy / postgres.POSTGRES_DUMP
    shutil.copytree(
        copy,
        partial,
        symlinks=True,
        ignore=lambda directory, names: [n for n in names if Path(directory, n) == dump],
    )
    postgres.restore_from_hotcopy(partial, copy, replace=False)
    partial.rename(target)
    log(f"restored Trac project {target.name}")


def merge_users(backed_up: Path, current: Path) -> None:
    """Add the backup's users that `current` lacks; existing users keep their password.

    The backup is read as Apache reads it (users_file.py): a byte order mark,
    comments and Windows line endings are not copied into the middle of
    `current`, where the mark would hide its user."""
    if not backed_up.is_file():
        return
    known = set(users.list_users(current))
    data = backed_up.read_bytes()
    raw = data.removeprefix(users_file.BOM).split(b"\n")
    taken = set(known)
    lines = []
    for line in users_file.lines(data):
        if line.hashed is not None and line.name not in taken:
            taken.add(line.name)  # the first line counts, as in Apache
            lines.append(raw[line.number - 1].strip())
    if lines:
        with open(current, "ab") as htpasswd:
            htpasswd.write(b"".join(line + b"\n" for line in lines))
        current.chmod(0o640)
    log(f"restored {len(lines)} users; {len(known)} existing users kept as they were")


def merge_addresses(backed_up: Path, current: Path) -> None:
    """Add the backup's recorded mail addresses of users `current` has none for."""
    restored = emails.read(backed_up)
    kept = emails.read(current)
    if set(restored) - set(kept):
        emails.write(current, {**restored, **kept})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Restore a trac-breezy-backup folder into fresh volumes."
    )
    parser.add_argument("backup", type=Path)
    args = parser.parse_args(argv)

    def carry_out(loaded: Settings) -> None:
        identity.become(identity.server_identity(loaded))
        restore(loaded, args.backup)

    return command.run(PROGRAM, carry_out)


if __name__ == "__main__":
    sys.exit(main())
