"""Parity with Breezy's own server: the same operations, the same outcomes.

The test starts `brz serve --allow-writes` on the host (bzr://) and runs one
list of user operations against it and against the container (bzr+http://,
with a password). Each operation's outcome (did it work, and what the user
then sees: revnos, file contents, tags, log lines) must be the same on both,
and every operation must work.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from stack import Brz, Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def brz_serve(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "serve-root"
    root.mkdir()
    with servers.brz_serve(root, Brz(tmp_path / "serve-home").env) as served:
        yield served.url


class Scenario:
    """Runs the operations against one server and records what a user sees."""

    def __init__(self, brz: Brz, base: str, work: Path) -> None:
        self.brz, self.base, self.work = brz, base, work
        work.mkdir()
        self.outcomes: dict[str, object] = {}

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def ok(self, *args: str, cwd: Path | None = None) -> bool:
        return self.brz(*args, cwd=cwd, check=False).returncode == 0

    def out(self, *args: str, cwd: Path | None = None) -> str | None:
        result = self.brz(*args, cwd=cwd, check=False)
        return result.stdout if result.returncode == 0 else None

    def record(self, name: str, outcome: object) -> None:
        self.outcomes[name] = outcome

    def commit(self, tree: Path, name: str, text: str, message: str) -> None:
        (tree / name).write_text(text)
        self.brz("add", cwd=tree, check=False)
        self.brz("commit", "-m", message, cwd=tree)


def operations(s: Scenario) -> dict[str, object]:
    w = s.work
    s.record("init", (s.ok("init", s.url("plain")), s.out("revno", s.url("plain"))))
    s.record("init-shared-repo", s.ok("init-shared-repo", s.url("repo")))

    s.brz("init", str(w / "local"))
    s.commit(w / "local", "file", "one\n", "one")
    s.commit(w / "local", "file", "one\ntwo\n", "two")
    s.record(
        "push new branch",
        (s.ok("push", s.url("repo/trunk"), cwd=w / "local"), s.out("revno", s.url("repo/trunk"))),
    )
    s.commit(w / "local", "other", "other\n", "three")
    s.record(
        "push existing branch", (s.ok("push", cwd=w / "local"), s.out("revno", s.url("repo/trunk")))
    )

    s.brz("branch", "-r", "2", str(w / "local"), str(w / "diverged"))
    s.commit(w / "diverged", "file", "diverged\n", "diverged")
    s.record("push diverged refused", s.ok("push", s.url("repo/trunk"), cwd=w / "diverged"))
    s.record(
        "push --overwrite",
        (
            s.ok("push", "--overwrite", s.url("repo/trunk"), cwd=w / "diverged"),
            s.out("cat", s.url("repo/trunk/file")),
        ),
    )
    s.ok("push", "--overwrite", s.url("repo/trunk"), cwd=w / "local")

    s.record("push standalone", s.ok("push", s.url("solo"), cwd=w / "local"))
    s.record(
        "branch standalone",
        (s.ok("branch", s.url("solo"), str(w / "solo")), (w / "solo" / "other").exists()),
    )
    s.record(
        "branch from shared repo",
        (s.ok("branch", s.url("repo/trunk"), str(w / "trunk")), s.out("revno", str(w / "trunk"))),
    )
    s.record(
        "branch server to server",
        (
            s.ok("branch", s.url("repo/trunk"), s.url("repo/feature")),
            s.out("revno", s.url("repo/feature")),
        ),
    )
    s.record(
        "branch server to server standalone",
        (
            s.ok("branch", s.url("solo"), s.url("solo-copy")),
            s.out("revno", s.url("solo-copy")),
        ),
    )

    s.brz("branch", str(w / "local"), str(w / "stacked"))
    s.commit(w / "stacked", "stacked", "on top\n", "stacked commit")
    s.record(
        "push --stacked-on",
        (
            s.ok("push", "--stacked-on", s.url("repo/trunk"), s.url("stacked"), cwd=w / "stacked"),
            "stacked on" in (s.out("info", s.url("stacked")) or "").lower(),
            s.ok("branch", s.url("stacked"), str(w / "stacked-copy")),
            (w / "stacked-copy" / "stacked").exists(),
        ),
    )

    s.record("checkout", s.ok("checkout", s.url("repo/trunk"), str(w / "co1")))
    s.ok("checkout", s.url("repo/trunk"), str(w / "co2"))
    s.commit(w / "co1", "from-checkout", "bound\n", "bound commit")
    s.record("checkout commit", s.out("revno", s.url("repo/trunk")))
    s.record("update", (s.ok("update", cwd=w / "co2"), (w / "co2" / "from-checkout").exists()))
    s.record("pull", (s.ok("pull", cwd=w / "trunk"), s.out("revno", str(w / "trunk"))))

    s.brz("tag", "v1.0", cwd=w / "trunk")
    s.record(
        "push tags",
        (
            s.ok("push", s.url("repo/trunk"), cwd=w / "trunk"),
            s.out("tags", "-d", s.url("repo/trunk")),
        ),
    )
    s.record(
        "tag on server",
        (
            s.ok("tag", "-d", s.url("repo/trunk"), "-r", "1", "v0.1"),
            s.out("tags", "-d", s.url("repo/trunk")),
        ),
    )

    log = s.out("log", "--line", s.url("repo/trunk"))
    s.record("log", len(log.splitlines()) if log is not None else None)
    s.record("cat", s.out("cat", s.url("repo/trunk/file")))
    annotate = s.out("annotate", s.url("repo/trunk/file"))
    s.record("annotate", [line.split()[0] for line in annotate.splitlines()] if annotate else None)
    s.record("break-lock", s.ok("break-lock", "--force", s.url("repo/trunk")))
    info = s.out("info", s.url("repo/trunk"))
    s.record("info", info is not None and "repository branch" in info.lower())
    return s.outcomes


def credentials_for(brz: Brz, stack: Stack) -> Brz:
    from stack import ADMIN, write_credentials

    write_credentials(brz, stack.port, *ADMIN)
    return brz


def test_same_outcomes_as_brz_serve(stack: Stack, brz_serve: str, tmp_path: Path):
    # Both start from an empty directory at their root URL.
    stack.exec("mkdir", "-p", "/srv/bzr/parity", user="www-data")
    reference = operations(Scenario(Brz(tmp_path / "ref-home"), brz_serve, tmp_path / "ref"))
    ours = operations(
        Scenario(
            credentials_for(Brz(tmp_path / "our-home"), stack),
            stack.bzr_url("parity").rstrip("/"),
            tmp_path / "ours",
        )
    )
    differences = {k: (reference[k], ours.get(k)) for k in reference if reference[k] != ours.get(k)}
    assert not differences, f"(brz serve, container) differ: {differences}"
    failed = [
        k
        for k, v in ours.items()
        if v is False or v is None or (isinstance(v, tuple) and False in v)
    ]
    assert failed == ["push diverged refused"], f"operations that failed: {failed}"
