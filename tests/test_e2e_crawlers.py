"""Crawlers on Trac's expensive pages (issue 19, finding 9).

Several anonymous crawlers, which ignore robots.txt, follow every link of a
1,000-revision branch's Trac pages for two minutes, while a logged-in user
reads Trac and a clone and a push run. Before TRAC_EXPENSIVE_PAGES, the
crawlers' logs, changesets, annotations and zip downloads took Trac's
threads and both cores, and the user's pages slowed past a second. Now an
anonymous address gets 60 of those a minute (mod_qos; 429 for them after
that), its cheap pages and the user's still pass, and /robots.txt asks
well-behaved crawlers to keep off them.

All the traffic comes from the host, through Docker's proxy: one address for
the crawlers and the user alike, as for a crawler and a user behind one NAT.
"""

from __future__ import annotations

import base64
import collections
import html
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import load
import pytest
from conftest import MAIN_STACK_ENV, running_stack
from stack import ADMIN, Brz, Stack, write_credentials

pytestmark = pytest.mark.e2e

CRAWLERS = 6
CRAWL_SECONDS = 120
BASELINE_SECONDS = 20
MAX_FRONTIER = 50_000
BASE = f"/trac/{load.PROJECT}"
# Never followed: pages that change state or ask for a password.
SKIPPED = re.compile(r"/(?:login|logout|prefs|newticket|register)\b|action=|/chrome/")
HREF = re.compile(r'href="([^"#]+)"')
# The pages TRAC_EXPENSIVE_PAGES counts (apache/httpd.conf.j2), as the test sees them.
EXPENSIVE_PATH = re.compile(r"^/trac/[^/]+/(?:(?:log|changeset|diff|export)(?:/|$)|timeline$)")
EXPENSIVE_QUERY = re.compile(r"(?:^|&)(?:annotate=|rev=|format=zip(?:&|$))")
LIMIT_PER_MINUTE = 60
# For showing the failure on the code before the fix: TRAC_EXPENSIVE_PAGES=open.
MODE = os.environ.get("TRAC_BREEZY_TEST_EXPENSIVE_PAGES", "")


@pytest.fixture(scope="module")
def crawled_stack(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {**load.STACK_ENV, "TRAC_EXPENSIVE_PAGES": MODE}
    with running_stack(
        image, "crawlers", ADMIN_USER=ADMIN[0], ADMIN_PASSWORD=ADMIN[1], **env
    ) as stack:
        load.prepare(stack, tmp_path_factory.mktemp("crawl-history"))
        yield stack


class Crawl:
    """A shared frontier of links and what the crawlers got (bounded)."""

    def __init__(self, stack: Stack, until: float) -> None:
        self.stack, self.until = stack, until
        self.frontier = collections.deque([f"{BASE}/", f"{BASE}/browser", f"{BASE}/log/"])
        self.seen = set(self.frontier)
        self.statuses: collections.Counter[int] = collections.Counter()
        self.kinds: collections.Counter[str] = collections.Counter()
        self.expensive_served = 0
        self.lock = threading.Lock()

    def next_path(self) -> str | None:
        with self.lock:
            return self.frontier.popleft() if self.frontier else None

    def add_links(self, page: str) -> None:
        with self.lock:
            for link in HREF.findall(page):
                path = html.unescape(link)
                if (
                    path.startswith(BASE + "/")
                    and not SKIPPED.search(path)
                    and path not in self.seen
                    and len(self.seen) < MAX_FRONTIER
                ):
                    self.seen.add(path)
                    self.frontier.append(path)

    def crawl(self) -> None:
        while time.monotonic() < self.until:
            path = self.next_path()
            if path is None:
                time.sleep(0.2)
                continue
            status, page = fetch(self.stack, path)
            kind = path[len(BASE) + 1 :].split("/")[0].split("?")[0] + ("?" if "?" in path else "")
            with self.lock:
                self.statuses[status] += 1
                self.expensive_served += status == 200 and is_expensive(path)
                self.kinds[f"{kind} {status}"] += 1
            if status == 200:
                self.add_links(page)


def is_expensive(path: str) -> bool:
    where, _, query = path.partition("?")
    match = EXPENSIVE_PATH.match(where)
    if match and (not where.endswith("/timeline") or query):
        return True
    return bool(EXPENSIVE_QUERY.search(urllib.parse.unquote(query)))


def fetch(stack: Stack, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(stack.url(path), headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            kind = response.headers.get("Content-Type", "")
            body = response.read()
            return response.status, body.decode("utf-8", "replace") if "html" in kind else ""
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


def post(stack: Stack, path: str, fields: str) -> int:
    """The status of an anonymous form POST, with a form token Trac accepts (its cookie)."""
    request = urllib.request.Request(
        stack.url(path),
        data=f"{fields}&__FORM_TOKEN=abc".encode(),
        headers={"Cookie": "trac_form_token=abc"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# Other spellings of an expensive page that Apache and Trac still serve as it
# (review of issue 19): matched before Apache decodes and merges the path, they
# were not counted; and a source view's fields sent as a POST body.
SPELLED = ("//log/", "/%6cog/", "/wiki/../log/")


def logged_in_reads(
    stack: Stack, until: float, seconds: list[tuple[float, str]], errors: list[str]
) -> None:
    """A user with a password (sent with every request) reading the branch's pages."""
    auth = {"Authorization": "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()}
    pages = [
        f"{BASE}/wiki/WikiStart",
        f"{BASE}/browser",
        f"{BASE}/browser/dir3/file3.txt",
        f"{BASE}/log/",
        f"{BASE}/changeset/500",
        f"{BASE}/changeset/999",
        f"{BASE}/report/1",
    ]
    while time.monotonic() < until:
        for path in pages:
            started = time.monotonic()
            status, _ = fetch(stack, path, auth)
            seconds.append((time.monotonic() - started, path))
            if status != 200:
                errors.append(f"{path}: {status}")
            time.sleep(0.5)


def clone_and_push(stack: Stack, work: Path, done: dict[str, float]) -> None:
    """An anonymous clone of the 1,000-revision branch, then a user's push."""
    started = time.monotonic()
    Brz(work / "anonymous")("branch", stack.bzr_url(load.BRANCH), str(work / "clone"))
    done["clone"] = time.monotonic() - started
    brz = Brz(work / "user")
    write_credentials(brz, stack.port, *ADMIN)
    (work / "clone" / "crawled.txt").write_text("pushed while crawled\n")
    brz("add", cwd=work / "clone")
    brz("commit", "-m", "while crawled", cwd=work / "clone")
    started = time.monotonic()
    brz("push", stack.bzr_url("load/crawled"), cwd=work / "clone")
    done["push"] = time.monotonic() - started


def test_crawlers_leave_trac_to_its_users(crawled_stack: Stack, tmp_path: Path):
    stack = crawled_stack
    # The user's pages alone first: the bound is 1 s, or a quarter more than the
    # slowest of these when the shared machine is that busy without crawlers.
    quiet: list[tuple[float, str]] = []
    logged_in_reads(stack, time.monotonic() + BASELINE_SECONDS, quiet, [])
    bound = max(1.0, 1.25 * max(quiet)[0])
    until = time.monotonic() + CRAWL_SECONDS
    crawl, seconds, errors, done = Crawl(stack, until), [], [], {}
    threads = [threading.Thread(target=crawl.crawl) for _ in range(CRAWLERS)]
    threads.append(threading.Thread(target=logged_in_reads, args=(stack, until, seconds, errors)))
    for thread in threads:
        thread.start()
    time.sleep(20)  # the crawl in full swing
    clone_and_push(stack, tmp_path, done)
    for thread in threads:
        thread.join(CRAWL_SECONDS + 120)
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))][0]
    print(
        f"user p99 {p99:.2f} s of {len(seconds)}, crawl {dict(crawl.statuses)}, "
        f"expensive served {crawl.expensive_served}, {done}"
    )
    print(f"slowest {ordered[-8:]}, alone {max(quiet)}, crawled {crawl.kinds.most_common(25)}")
    assert errors == [], errors[:5]
    assert sum(crawl.statuses.values()) >= 200  # the crawlers did crawl
    # From their one address, at most 60 expensive pages a minute (they got
    # 1,000+ in two minutes before).
    minutes = CRAWL_SECONDS // 60 + 1
    assert crawl.expensive_served <= LIMIT_PER_MINUTE * minutes, crawl.expensive_served
    assert p99 <= bound, (p99, bound, ordered[-10:])
    assert set(done) == {"clone", "push"}


def test_robots_txt_keeps_crawlers_off_the_expensive_pages(crawled_stack: Stack):
    status, headers, robots = crawled_stack.get("/robots.txt")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    for pattern in ("/*/log/", "/*/changeset", "/*/export/", "/*annotate=", "/*format=zip"):
        assert f"Disallow: {pattern}\n" in robots
    # Made-up credentials do not lift the limit: sent for these pages, they are checked.
    made_up = {"Authorization": "Basic " + base64.b64encode(b"nobody:guess").decode()}
    assert fetch(crawled_stack, f"{BASE}/log/", made_up)[0] == 401


def test_other_spellings_and_posts_of_expensive_pages_are_limited_too(crawled_stack: Stack):
    stack = crawled_stack
    for _ in range(3 * LIMIT_PER_MINUTE):  # until this address is over its limit
        if fetch(stack, f"{BASE}/log/")[0] == 429:
            break
    else:
        pytest.fail("the log was never limited")
    for spelling in SPELLED:
        assert fetch(stack, BASE + spelling)[0] == 429, spelling
    assert post(stack, f"{BASE}/browser", "rev=1") == 429
    assert fetch(stack, f"{BASE}/wiki/WikiStart")[0] == 200  # its cheap pages still pass


def test_with_login_anonymous_visitors_log_in_for_expensive_pages_only(image: str):
    with running_stack(
        image, "expensivelogin", TRAC_EXPENSIVE_PAGES="login", **MAIN_STACK_ENV
    ) as stack:
        auth = {"Authorization": "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()}
        for path in (
            "/trac/delta/log/",
            "/trac/delta/changeset/1",
            "/trac/delta/browser?%61nnotate=blame",
        ):
            assert fetch(stack, path)[0] == 401, path
            assert fetch(stack, path, auth)[0] != 401, path
        for spelling in SPELLED:
            assert fetch(stack, "/trac/delta" + spelling)[0] == 401, spelling
        assert post(stack, "/trac/delta/browser", "rev=1") == 401
        for path in ("/trac/delta/wiki/WikiStart", "/trac/", "/robots.txt"):
            assert fetch(stack, path)[0] == 200, path
