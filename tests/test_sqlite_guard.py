"""The SQLite guard: a second container on the same SQLite projects is refused.

Two containers are stood in for by two processes: `flock` locks belong to
open file descriptions, so a child process that opens the file itself (as a
second container would) conflicts with the parent's lock, exactly as across
containers on one volume.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from old_trac import make_old_environment

from trac_breezy.container import settings
from trac_breezy.startup import sqlite_guard

HOLD_IN_CHILD = """
import os, sys
from trac_breezy.container import settings
from trac_breezy.startup import sqlite_guard
try:
    sqlite_guard.hold(settings.load({"TRAC_ENV_PARENT_DIR": sys.argv[1], "BZR_ROOT": sys.argv[1],
                                     "TRAC_DATABASE_URL": sys.argv[2]}))
except sqlite_guard.SQLiteShared as error:
    print(error)
    sys.exit(2)
"""


def project(parent: Path, name: str, database: str | None) -> None:
    (parent / name / "conf").mkdir(parents=True)
    (parent / name / "VERSION").write_text("Trac Environment Version 1\n")
    line = f"database = {database}\n" if database else ""
    (parent / name / "conf" / "trac.ini").write_text(f"[trac]\nbase_url =\n{line}")


def load(parent: Path, database_url: str = "") -> settings.Settings:
    return settings.load(
        {
            "TRAC_ENV_PARENT_DIR": str(parent),
            "BZR_ROOT": str(parent),
            "TRAC_DATABASE_URL": database_url,
        }
    )


def second_container(parent: Path, database_url: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HOLD_IN_CHILD, str(parent), database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


PG = "postgres://trac@postgres/trac"


def test_a_second_container_on_sqlite_projects_is_refused_with_the_fix(tmp_path):
    project(tmp_path, "code", None)  # Trac's default: SQLite
    project(tmp_path, "docs", f"{PG}?schema=docs")
    fd = sqlite_guard.hold(load(tmp_path, PG))
    try:
        assert fd is not None and os.get_inheritable(fd)  # kept across the exec
        refused = second_container(tmp_path, PG)
        assert refused.returncode == 2
        (line,) = refused.stdout.splitlines()
        assert "another container already serves the SQLite projects" in line
        assert "project(s) code use SQLite" in line and "docs" not in line.split("(")[1]
        assert "run one replica" in line and "TRAC_DATABASE_URL" in line
    finally:
        os.close(fd)
    # The first one gone (its descriptor closed, as when its container ends): allowed.
    assert second_container(tmp_path, PG).returncode == 0


def test_empty_database_url_counts_as_sqlite(tmp_path):
    fd = sqlite_guard.hold(load(tmp_path))
    try:
        assert fd is not None
        refused = second_container(tmp_path)
        assert refused.returncode == 2 and "new projects would use SQLite" in refused.stdout
    finally:
        os.close(fd)


def test_all_in_postgres_needs_no_lock_and_any_number_may_run(tmp_path):
    project(tmp_path, "code", f"{PG}?schema=code")
    assert sqlite_guard.hold(load(tmp_path, PG)) is None
    assert second_container(tmp_path, PG).returncode == 0
    assert not (tmp_path / sqlite_guard.LOCK_NAME).exists()


def test_a_planted_link_is_refused_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    (tmp_path / sqlite_guard.LOCK_NAME).symlink_to(target)
    with pytest.raises(sqlite_guard.SQLiteShared, match="is a symbolic link; remove it"):
        sqlite_guard.hold(load(tmp_path))
    assert target.read_text() == "keep\n"


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / sqlite_guard.LOCK_NAME)
    with pytest.raises(sqlite_guard.SQLiteShared, match="is not a regular file; remove it"):
        sqlite_guard.hold(load(tmp_path))


def test_a_read_only_volume_is_not_refused():
    """Nothing can write SQLite there either. Run as root, a forked child drops
    to `nobody` first (root could write anyway), in a directory it may read."""
    with tempfile.TemporaryDirectory() as name:
        read_only_volume(Path(name))


def read_only_volume(tmp_path: Path) -> None:
    project(tmp_path, "code", None)
    tmp_path.chmod(0o555)
    loaded = load(tmp_path)
    pid = os.fork()
    if pid == 0:  # the child: 0 when it was let through without a lock
        code = 1
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            code = 0 if sqlite_guard.hold(loaded) is None else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    tmp_path.chmod(0o755)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not (tmp_path / sqlite_guard.LOCK_NAME).exists()


def test_the_database_is_read_without_opening_trac(tmp_path):
    project(tmp_path, "a", None)
    project(tmp_path, "b", "sqlite:db/other.db")
    project(tmp_path, "c", f"{PG}?schema=c")
    (tmp_path / "not-a-project").mkdir()
    assert sqlite_guard.sqlite_projects(tmp_path) == ["a", "b"]


def test_no_lock_manager_warns_and_goes_on(tmp_path, monkeypatch, capsys):
    """A network file system without locks (NFS `nolock`): a clear warning, not a stop."""
    import errno
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert sqlite_guard.hold(load(tmp_path)) is None
    (line,) = capsys.readouterr().err.splitlines()
    assert "warning: cannot lock" in line and "run one replica only" in line


def test_an_unusable_lock_path_stops_with_one_line(tmp_path):
    (tmp_path / sqlite_guard.LOCK_NAME).mkdir()  # a directory: EISDIR
    with pytest.raises(sqlite_guard.SQLiteShared, match="the SQLite guard needs this file"):
        sqlite_guard.hold(load(tmp_path))


def test_an_old_host_s_windows_1252_trac_ini_does_not_stop_the_start(tmp_path):
    """Trac 0.12 wrote trac.ini in the host's locale; the guard runs before the
    repairs (old_projects) that make it UTF-8, and read it as UTF-8: the whole
    start ended in a UnicodeDecodeError traceback."""
    for name, database in (("arduino", None), ("docs", f"{PG}?schema=docs")):
        make_old_environment(tmp_path / name, "Projetos Arduíno", version=26)
        ini = tmp_path / name / "conf" / "trac.ini"
        text = ini.read_text(encoding="utf-8")
        if database:
            text = text.replace("database = sqlite:db/trac.db", f"database = {database}")
        assert "Arduíno" in text
        ini.write_bytes(text.encode("cp1252"))
    assert sqlite_guard.database_of(tmp_path / "docs") == f"{PG}?schema=docs"
    assert sqlite_guard.sqlite_projects(tmp_path) == ["arduino"]


def test_a_fifo_for_trac_ini_is_not_waited_on(tmp_path):
    def stuck(signum: int, frame: object) -> None:
        pytest.fail("the guard waits on the FIFO")  # not an OSError, which it catches

    project(tmp_path, "code", None)
    (tmp_path / "code" / "conf" / "trac.ini").unlink()
    os.mkfifo(tmp_path / "code" / "conf" / "trac.ini")
    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(5)
    try:
        assert sqlite_guard.sqlite_projects(tmp_path) == ["code"]  # counts as SQLite
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
