"""Locks left by this container's dead processes are broken at start; others stay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from breezy import transport
from breezy.lockdir import LockDir
from stack import Brz

from trac_breezy.admin import locks

KILLED_HOLDER = """
import os, sys, breezy.bzr
from breezy import transport
from breezy.branch import Branch
from breezy.lockdir import LockDir
Branch.open(sys.argv[1]).lock_write()
# A pack repository takes its physical lock while a write group commits.
LockDir(transport.get_transport_from_path(sys.argv[2]), "lock").attempt_lock()
os._exit(0)  # dies holding both locks, as a killed push does
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    brz = Brz(tmp_path / "home")
    root = tmp_path / "root"
    brz("init-shared-repo", str(root / "repo"))
    brz("init", str(root / "repo" / "trunk"))
    brz("init", str(root / "other"))
    env = {**brz.env, "PYTHONPATH": ":".join(sys.path)}
    subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_HOLDER,
            str(root / "repo" / "trunk"),
            str(root / "repo" / ".bzr" / "repository"),
        ],
        check=True,
        env=env,
    )
    return root


def held(root: Path) -> set[str]:
    return {str(lock.relative_to(root)) for lock in locks.lock_dirs(root)}


def test_locks_of_dead_processes_of_this_host_are_broken(tree: Path, capsys):
    assert held(tree) == {"repo/trunk/.bzr/branch/lock", "repo/.bzr/repository/lock"}
    broken = locks.break_locks_of_this_host(tree)
    assert len(broken) == 2 and held(tree) == set()
    assert "broke the lock of" in capsys.readouterr().err


def test_locks_of_other_hosts_are_left_alone(tree: Path):
    other = LockDir(
        transport.get_transport_from_path(str(tree / "other" / ".bzr" / "branch")), "lock"
    )
    other.attempt_lock()  # taken by this process...
    info = (tree / "other/.bzr/branch/lock/held/info").read_text()
    (tree / "other/.bzr/branch/lock/held/info").write_text(
        info.replace("hostname: ", "hostname: another-replica-")  # ...as if by another host
    )
    locks.break_locks_of_this_host(tree)
    assert "other/.bzr/branch/lock" in held(tree)
