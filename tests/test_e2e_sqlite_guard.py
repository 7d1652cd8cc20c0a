"""End to end: a second container on the same SQLite projects refuses to start.

Two containers of the image on one Trac volume, as `--scale` or a second
replica would run them: the first serves a SQLite project, the second stops
with exit status 2 and one line naming the cause and the fix; once the first
has stopped, the same container starts (a stop-first update). With every
project in PostgreSQL, several replicas on one volume run side by side:
tests/test_e2e_swarm.py runs three.
"""

from __future__ import annotations

import os
import time

import pytest
from stack import run, side_container

pytestmark = pytest.mark.e2e


def wait_until_healthy(name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run(["docker", "exec", name, "trac-breezy-healthcheck"], check=False).returncode == 0:
            return
        time.sleep(0.5)
    logs = run(["docker", "logs", name], check=False)
    pytest.fail(f"{name} did not become healthy:\n{(logs.stdout + logs.stderr)[-3000:]}")


def test_a_second_container_on_sqlite_projects_is_refused_until_the_first_stops(image: str):
    volume = f"tbtestsqliteguard{os.getpid()}"
    run(["docker", "volume", "create", volume])
    names: list[str] = []
    try:
        first, _ = side_container(image, {"TRAC_PROJECTS": "solo"}, {volume: "/var/lib/trac"})
        names.append(first)
        wait_until_healthy(first)

        second, _ = side_container(image, {}, {volume: "/var/lib/trac"})
        names.append(second)
        assert run(["docker", "wait", second], timeout=120).stdout.strip() == "2"
        logs = run(["docker", "logs", second]).stderr
        (line,) = [x for x in logs.splitlines() if x.startswith("trac-breezy: error:")]
        assert "another container already serves the SQLite projects in /var/lib/trac" in line
        assert "project(s) solo use SQLite" in line
        assert "run one replica" in line and "TRAC_DATABASE_URL" in line
        assert "spawned: 'apache'" not in logs  # refused before anything served

        run(["docker", "stop", first], timeout=120)
        run(["docker", "start", second])
        wait_until_healthy(second)
    finally:
        for name in names:
            run(["docker", "rm", "-f", name], check=False)
        run(["docker", "volume", "rm", volume], check=False)
