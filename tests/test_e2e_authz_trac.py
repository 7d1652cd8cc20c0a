"""End to end: Trac and the pages for browsers obey the rule file (AUTHZ_FILE).

The real container with the rule file mounted as compose.yaml mounts secrets,
projects alpha, beta and public each showing its branch (TRAC_REPOSITORIES),
branches pushed with brz as the admin; then Trac's browser, log, changeset,
timeline and search as alice (writes /alpha, reads /beta), bob (writes /beta
only) and anonymous (reads /public only), logged in at /trac/<project>/login;
the front page and the folder pages; and the file edited on the host while
the container runs: the next answer follows it, without a restart.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import running_stack
from stack import ADMIN, Brz, Stack, mounted_rule_file, write_credentials
from trac_web import TracUser

pytestmark = pytest.mark.e2e

PASSWORDS = {"alice": "alice pw 1", "bob": "bob pw 2"}
RULES = f"""\
[groups]
alpha-team = alice

[/]
* =
{ADMIN[0]} = rw

[/alpha]
@alpha-team = rw

[/beta]
alice = r
bob = rw

[/public]
* = r
{ADMIN[0]} = rw
"""
# A word only each project's commit message holds.
WORDS = {"alpha": "zebracorn", "beta": "yakshave", "public": "xylophone"}
READS = {
    "alice": {"alpha", "beta", "public"},
    "bob": {"beta", "public"},
    None: {"public"},
}


def push_branch(brz: Brz, stack: Stack, work: Path, project: str) -> None:
    local = work / project
    brz("init", "--create-prefix", str(local))
    (local / f"{project}.txt").write_text(f"{project} inside\n")
    brz("add", cwd=local)
    brz("commit", "-m", f"{project}: the {WORDS[project]} change", cwd=local)
    brz("push", "--create-prefix", stack.bzr_url(f"{project}/trunk"), cwd=local)


@pytest.fixture(scope="module")
def site(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    """The stack with the rule file (a host file, mounted read-only) and three pushed branches."""
    base = tmp_path_factory.mktemp("authz-trac")
    mount, rules = mounted_rule_file(base, RULES)
    env = {
        **mount,
        "ADMIN_USER": ADMIN[0],
        "ADMIN_PASSWORD": ADMIN[1],
        "TRAC_PROJECTS": "alpha,beta,public",
        "TRAC_REPOSITORIES": "alpha=alpha/trunk,beta=beta/trunk,public=public/trunk",
    }
    with running_stack(image, "authztrac", **env) as stack:
        for user, password in PASSWORDS.items():
            stack.exec("trac-breezy-user", "add", user, "--password-stdin", input=password + "\n")
        brz = Brz(base / "admin-home")
        write_credentials(brz, stack.port, *ADMIN)
        for project in WORDS:
            push_branch(brz, stack, base / "work", project)
        yield stack, rules


def visitor(stack: Stack, project: str, user: str | None) -> TracUser:
    """A browser at project `project`, logged in as `user` (None: anonymous)."""
    person = TracUser(stack.url(f"/trac/{project}"))
    if user:
        person.login(user, PASSWORDS[user])
    return person


def trac_pages(person: TracUser, project: str) -> dict[str, tuple[int, str]]:
    """The source views of a project's default repository, as `person` gets them."""
    return {
        "browser": person.open("/browser"),
        "file": person.open(f"/browser/{project}.txt"),
        "log": person.open("/log/"),
        "changeset": person.open("/changeset/1"),
    }


@pytest.mark.parametrize("user", ["alice", "bob", None])
def test_trac_source_views_follow_the_rules(site, user):
    stack, _ = site
    for project, word in WORDS.items():
        person = visitor(stack, project, user)
        for view, (status, page) in trac_pages(person, project).items():
            if project in READS[user]:
                assert status == 200, (project, view, page[-1500:])
                if view in ("log", "changeset"):
                    assert word in page, (project, view)
            else:
                # The browser's root of a project with nothing viewable is Trac's
                # "No viewable repositories" (404); Trac's log checks LOG_VIEW
                # globally and then lists only the changesets one may view: none.
                refused = {"browser": 404, "log": 200}.get(view, 403)
                assert status == refused, (project, view, status)
                assert word not in page, (project, view)
                if view != "file":  # (a 403 names the path that was asked for)
                    assert f"{project}.txt" not in page, (project, view)


@pytest.mark.parametrize("user", ["alice", "bob", None])
def test_timeline_and_search_show_only_readable_changesets(site, user):
    stack, _ = site
    for project, word in WORDS.items():
        person = visitor(stack, project, user)
        status, timeline = person.open("/timeline?changeset=on&daysback=3")
        assert status == 200, timeline[-1500:]
        assert (word in timeline) is (project in READS[user]), (project, "timeline")
        status, found = person.open(f"/search?q={word}&changeset=on")
        assert status == 200, found[-1500:]
        if project not in READS[user]:  # (direct repositories are not searched at all)
            assert f"the {word} change" not in found, (project, "search")


def basic_get(stack: Stack, path: str, user: str | None = None) -> tuple[int, dict, str]:
    headers = {}
    if user:
        token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(stack.url(path), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_the_front_page_lists_what_anonymous_may_read(site):
    stack, _ = site
    status, _, page = stack.get("/trac/")
    assert status == 200
    assert "/bzr/public/trunk" in page
    assert "/bzr/alpha/trunk" not in page and "/bzr/beta/trunk" not in page
    assert WORDS["alpha"] not in page and WORDS["beta"] not in page


@pytest.mark.parametrize("user", ["alice", "bob", None])
def test_folder_pages_list_what_their_visitor_may_read(site, user):
    stack, _ = site
    status, _, page = basic_get(stack, "/bzr/", user)
    assert status == 200, page[-1500:]
    for project in WORDS:
        assert (f'href="/bzr/{project}/trunk/"' in page) is (project in READS[user]), project
    status, headers, page = basic_get(stack, "/bzr/alpha/trunk/", user)
    if user == "alice":
        assert status == 200 and WORDS["alpha"] in page
    elif user == "bob":
        assert status == 404 and WORDS["alpha"] not in page
    else:
        assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="trac-breezy"'
        assert WORDS["alpha"] not in page


def test_the_rule_file_is_reread_when_it_changes(site):
    stack, rules = site
    bob = visitor(stack, "alpha", "bob")
    assert bob.open("/browser/alpha.txt")[0] == 403
    try:
        rules.write_text(RULES.replace("@alpha-team = rw", "@alpha-team = rw\nbob = r"))
        deadline = time.monotonic() + 30
        while (answer := bob.open("/browser/alpha.txt"))[0] != 200:
            assert time.monotonic() < deadline, answer
            time.sleep(0.5)
        assert "alpha inside" in answer[1]
        assert basic_get(stack, "/bzr/alpha/trunk/", "bob")[0] == 200
    finally:
        rules.write_text(RULES)
    deadline = time.monotonic() + 30
    while (answer := bob.open("/browser/alpha.txt"))[0] != 403:
        assert time.monotonic() < deadline, answer
        time.sleep(0.5)
    assert basic_get(stack, "/bzr/alpha/trunk/", "bob")[0] == 404
