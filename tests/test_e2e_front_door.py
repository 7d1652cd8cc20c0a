"""End to end: the front door, as a visitor's browser sees it.

`/` is the front page (each project, its description, latest activity and
branches with the brz commands), `/bzr/…/` are pages of branches instead of
Apache's listing of `.bzr` internals, and `brz` still reads the tree's plain
files over `http://`. Checked in a real browser (Debian's Chromium, headless):
screenshots are kept in the test's temporary directory and their paths
printed, and the DOM the browser built is searched. Also: the healthcheck's
requests stay out of the access log, and a clean start logs no traceback
and no warning.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import chromium, dom, screenshot
from conftest import running_stack
from stack import ADMIN, Brz, Stack, run, write_credentials

from trac_breezy.trac_app.front.projects import CACHE_SECONDS

pytestmark = pytest.mark.e2e

DESCRIPTION = "Alpha's code & docs"


def make_branch(brz: Brz, path: Path, message: str) -> Path:
    brz("init", str(path))
    (path / "README").write_text("front door\n")
    brz("add", cwd=path)
    brz("commit", "-m", message, cwd=path)
    return path


def container_logs(stack: Stack, since: float | None = None) -> str:
    since_args = ["--since", f"{since:.3f}"] if since is not None else []
    result = run(["docker", "logs", *since_args, stack.container_id()])
    return result.stdout + result.stderr


def wait_for_front_page(stack: Stack, *texts: str, timeout: float = 30) -> None:
    """Until the front page shows `texts`; then as long again as a summary is
    cached, so that every daemon process shows them."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, page = stack.get("/")  # every project opened by the front page
        if status == 200 and all(text in page for text in texts):
            time.sleep(CACHE_SECONDS + 0.5)
            return
        assert time.monotonic() < deadline, page
        time.sleep(1)


@pytest.fixture(scope="module")
def front(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    """A stack with two projects and their branches pushed; and its logs up to
    the first front page (before any project page is opened)."""
    env = {
        "ADMIN_USER": ADMIN[0],
        "ADMIN_PASSWORD": ADMIN[1],
        "TRAC_PROJECTS": "alpha,beta",
        "TRAC_REPOSITORIES": "alpha=alpha,beta=beta/trunk",
    }
    with running_stack(image, "frontdoor", **env) as stack:
        stack.exec(
            "trac-admin",
            "/var/lib/trac/alpha",
            "config",
            "set",
            "project",
            "descr",
            DESCRIPTION,
            user="www-data",
        )
        home = tmp_path_factory.mktemp("pusher")
        brz = Brz(home / "home")
        write_credentials(brz, stack.port, *ADMIN)
        local = make_branch(brz, home / "work", "Initial import, refs #1")
        brz("init-shared-repo", stack.bzr_url("alpha"))
        for target in ("alpha/trunk", "alpha/feature-x", "beta/trunk"):
            brz("push", "--create-prefix", stack.bzr_url(target), cwd=local)
        wait_for_front_page(stack, "bzr/alpha/feature-x", "bzr/beta/trunk", "changeset [")
        yield stack, container_logs(stack)


@pytest.fixture(scope="module")
def browser() -> str:
    return chromium()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def test_a_clean_start_logs_no_traceback_and_no_warning(front: tuple[Stack, str]):
    """Trac's PostgreSQL backend logged a ctypes TypeError with its traceback
    in every process and project, and Python the pkg_resources warning."""
    stack, start_logs = front
    assert "created Trac project alpha" in start_logs  # these are the start's logs
    for word in ("traceback", "warning"):
        lines = [line for line in start_logs.splitlines() if word in line.lower()]
        assert not lines, "\n".join(lines[:20])
    # Project pages open each project in the daemon that serves them: still none.
    for path in ("/trac/alpha/timeline", "/trac/beta/browser", "/trac/alpha/wiki"):
        assert stack.get(path)[0] == 200, path
    assert "Traceback" not in container_logs(stack)


def test_the_front_page_in_a_browser(front: tuple[Stack, str], browser: str, shots: Path):
    stack, _ = front
    page = dom(browser, stack.url("/"), shots / "profile")  # redirected to /trac/
    screenshot(browser, stack.url("/"), shots / "front-page.png")
    origin = f"http://127.0.0.1:{stack.port}"
    assert "<h1>Projects</h1>" in page
    assert "Alpha's code &amp; docs" in page and "My example project" in page  # beta's
    for branch in ("alpha/trunk", "alpha/feature-x", "beta/trunk"):
        assert f"brz branch bzr+{origin}/bzr/{branch}" in page, branch
        assert f"brz checkout bzr+{origin}/bzr/{branch}" in page, branch
        assert f"brz push bzr+{origin}/bzr/{branch}" in page, branch
    assert "Pushing needs a user" in page
    for link in ("/trac/alpha", "/trac/alpha/timeline", "/trac/alpha/browser/trunk", "/bzr/"):
        assert f'href="{link}"' in page, link
    assert re.search(r"Latest activity: <a [^>]*>changeset \[trunk:1\]</a>", page), page
    # Styled with Trac's own style sheet, which Apache serves.
    css = re.search(r'<link rel="stylesheet" href="([^"]+/trac\.css)"', page).group(1)
    status, headers, _ = stack.get(css)
    assert status == 200 and headers["Content-Type"].startswith("text/css")


def test_bzr_folders_in_a_browser_show_branches_not_bzr(
    front: tuple[Stack, str], browser: str, shots: Path
):
    stack, _ = front
    origin = f"http://127.0.0.1:{stack.port}"
    pages = {
        "/bzr/": "bzr-root.png",
        "/bzr/alpha/": "bzr-alpha.png",
        "/bzr/alpha/trunk/": "bzr-alpha-trunk.png",
    }
    for path, name in pages.items():
        screenshot(browser, stack.url(path), shots / name)
        page = dom(browser, stack.url(path), shots / "profile")
        assert ".bzr" not in page, path
        assert f"brz branch bzr+{origin}/bzr/alpha/trunk" in page, path
    root = dom(browser, stack.url("/bzr/"), shots / "profile")
    assert 'href="/bzr/beta/trunk/"' in root and 'href="/bzr/alpha/"' in root
    alpha = dom(browser, stack.url("/bzr/alpha/"), shots / "profile")
    assert "shared repository" in alpha and 'href="/trac/alpha/browser"' in alpha
    trunk = dom(browser, stack.url("/bzr/alpha/trunk/"), shots / "profile")
    assert "Branch trunk" in trunk and "Initial import, refs #1" in trunk
    assert f"brz checkout bzr+{origin}/bzr/alpha/trunk" in trunk
    # A folder without its "/" is sent to its page; internals are no page.
    status, _, body = stack.get("/bzr/alpha")
    assert status == 200 and "brz branch" in body
    status, headers, _ = stack.get("/bzr/alpha/trunk/.bzr/")
    assert status == 404 and headers["Content-Security-Policy"] == "sandbox"


def test_brz_still_reads_plain_files_over_http(front: tuple[Stack, str], tmp_path: Path):
    stack, _ = front
    brz = Brz(tmp_path / "reader")
    started = time.time()
    for scheme in ("http", "nosmart+http"):  # nosmart: plain files only, no smart server
        copy = tmp_path / f"copy-{scheme}"
        brz("branch", stack.bzr_url("alpha/trunk", scheme=scheme), str(copy))
        assert (copy / "README").read_text() == "front door\n"
    reads = [line for line in container_logs(stack, started).splitlines() if "Breezy/" in line]
    assert any('"GET /bzr/alpha/.bzr/repository/pack-names ' in line for line in reads)
    assert not [line for line in reads if re.search(r'"GET \S*/ HTTP', line)]  # no folder


def test_the_healthcheck_stays_out_of_the_access_log(front: tuple[Stack, str]):
    stack, _ = front
    started = time.time()
    time.sleep(15)
    checks = [
        entry
        for entry in stack.inspect()["State"]["Health"]["Log"]
        if entry["ExitCode"] == 0 and _timestamp(entry["Start"]) > started
    ]
    assert len(checks) >= 2, json.dumps(stack.inspect()["State"]["Health"]["Log"][-3:])
    logged = [line for line in container_logs(stack, started).splitlines() if "HTTP/1.1" in line]
    assert not logged, "\n".join(logged)


def _timestamp(docker_time: str) -> float:
    """Seconds since the epoch of Docker's RFC 3339 time (nanoseconds cut)."""
    from datetime import datetime

    head, _, rest = docker_time.partition(".")
    zone = rest[rest.find("+") :] if "+" in rest else "+00:00"
    return datetime.fromisoformat(head + zone).timestamp()


def test_folder_pages_need_a_password_when_reads_do(image: str):
    with running_stack(image, "frontprivate", BZR_ANONYMOUS_READ="false") as stack:
        for path in ("/bzr/", "/bzr/anything/", "/bzr/x/.bzr/"):
            assert stack.get(path)[0] == 401, path
        assert stack.get("/")[0] == 200
