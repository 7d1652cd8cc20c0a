"""Attacks (issue 19): what a project's admin, a repository or an anonymous
visitor reaches in Trac beyond what the host gives them.

One real container: projects alpha and beta showing alpha/trunk and
beta/trunk, the rule file mounted (AUTHZ_FILE: `/` readable by everyone,
`/alpha` by nobody but the admin, `/beta` written by bob), anonymous reads
off (BZR_ANONYMOUS_READ=false), and bob TRAC_ADMIN of project beta only.

- Finding 1: bob uploads a `.py` plugin through Trac's real Admin > Plugins
  page; then beta's own trac.ini tries to turn the panel on again (read at
  once by Trac, and at the next start). Nothing lands in plugins/. Trac's
  About page shows him no secret of the shared trac.ini (the SMTP password).
- Finding 3: bob adds a `bzr` repository above BZR_ROOT (the admin panel,
  trac-admin, a link in the tree) and reads alpha's file through it.
- Finding 10: anonymous visitors get none of Trac's source views of a
  pushed branch; bob does; the wiki and tickets stay open.
- Finding 2: bob, who may write /beta, turns beta/leak into a reference to
  /alpha/trunk and beta/ref into one to /beta/secret (which nobody but the
  admin may read) with smart mkdir/put; neither the /bzr/beta/ folder page
  nor Trac's browser of beta's folder shows their targets.
"""

from __future__ import annotations

import base64
import re
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from conftest import running_stack
from smart_harness import smart_reply
from stack import ADMIN, Brz, Stack, mounted_rule_file, run, smart_request, write_credentials
from trac_web import TracUser, warnings

pytestmark = pytest.mark.e2e

BOB = ("bob", "bob pw 19")
RULES = f"""\
[/]
* = r
{ADMIN[0]} = rw

[/alpha]
* =
{ADMIN[0]} = rw

[/beta]
bob = rw

[/beta/secret]
* =
{ADMIN[0]} = rw
"""
WORDS = {"alpha": "quokkasecret", "beta": "wombatpublic", "beta/secret": "narwhalhidden"}
SECRET = "smtp-pw-of-the-host-19"
TRAC = "/var/lib/trac"
MARKER = "/tmp/plugin-ran"
EVIL_PLUGIN = f'''\
from trac.core import Component

open("{MARKER}", "w").write("ran")


class Evil(Component):
    pass
'''


@pytest.fixture(scope="module")
def site(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("trac-reach")
    mount, _rules = mounted_rule_file(base, RULES)
    env = {
        **mount,
        "ADMIN_USER": ADMIN[0],
        "ADMIN_PASSWORD": ADMIN[1],
        "BZR_ANONYMOUS_READ": "false",
        "TRAC_PROJECTS": "alpha,beta",
        "TRAC_REPOSITORIES": "alpha=alpha/trunk,beta=beta/trunk",
        # The host's secrets in the shared trac.ini (no mail server answers: none is sent).
        "SMTP_HOST": "127.0.0.1",
        "SMTP_FROM": "trac@example.org",
        "SMTP_USER": "mailer",
        "SMTP_PASSWORD": SECRET,
    }
    with running_stack(image, "tracreach", **env) as stack:
        stack.exec("trac-breezy-user", "add", BOB[0], "--password-stdin", input=BOB[1] + "\n")
        trac_admin(stack, "beta", "permission", "add", BOB[0], "TRAC_ADMIN")
        brz = Brz(base / "admin-home")
        write_credentials(brz, stack.port, *ADMIN)
        for place, word in WORDS.items():
            name = place.rpartition("/")[2]
            local = base / "work" / name
            brz("init", "--create-prefix", str(local))
            (local / f"{name}.txt").write_text(f"{name} {word} inside\n")
            brz("add", cwd=local)
            brz("commit", "-m", f"{name}: the {word} change", cwd=local)
            target = place if "/" in place else f"{place}/trunk"
            brz("push", "--create-prefix", stack.bzr_url(target), cwd=local)
        # Project beta also shows its whole folder (multi-branch), as `all`.
        trac_admin(stack, "beta", "repository", "add", "all", "/srv/bzr/beta", "bzr")
        yield stack


def trac_admin(stack: Stack, project: str, *args: str, check: bool = True):
    return stack.exec("trac-admin", f"{TRAC}/{project}", *args, user="www-data", check=check)


def as_bob(stack: Stack, project: str = "beta") -> TracUser:
    person = TracUser(stack.url(f"/trac/{project}"))
    person.login(*BOB)
    return person


def post_multipart(person: TracUser, path: str, fields: dict, files: dict) -> tuple[int, str]:
    """POST a multipart form as a browser does (Trac's upload forms)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        )
    for name, (filename, content) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: text/x-python\r\n\r\n{content}\r\n'
        )
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    request = urllib.request.Request(
        person.base + path,
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with person.opener.open(request, timeout=120) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def upload_plugin(stack: Stack, filename: str) -> tuple[int, str]:
    bob = as_bob(stack)
    token = bob.form_token()
    return post_multipart(
        bob,
        "/admin/general/plugin",
        {"__FORM_TOKEN": token, "install": "Install"},
        {"plugin_file": (filename, EVIL_PLUGIN)},
    )


def nothing_installed(stack: Stack) -> None:
    stack.get("/trac/beta/wiki")  # an anonymous request loads whatever plugins/ holds
    listed = stack.exec("sh", "-c", f"ls -A {TRAC}/beta/plugins {TRAC}/alpha/plugins").stdout
    assert ".py" not in listed, listed
    assert stack.exec("test", "-e", MARKER, check=False).returncode != 0, "the plugin ran"


def panel_is_absent(stack: Stack) -> None:
    bob = as_bob(stack)
    status, page = bob.open("/admin")
    assert status == 200, page[-2000:]
    assert "/admin/general/plugin" not in page and "/admin/general/logging" not in page
    for panel in ("plugin", "logging"):
        status, page = bob.open(f"/admin/general/{panel}")
        assert status in (403, 404), (panel, status, page[-1500:])


def test_a_project_admin_cannot_upload_a_plugin(site: Stack):
    status, page = upload_plugin(site, "evil_one.py")
    assert status in (403, 404), (status, page[-1500:])
    panel_is_absent(site)
    nothing_installed(site)


def test_a_project_admin_does_not_read_the_host_s_secrets_on_the_about_page(site: Stack):
    status, page = as_bob(site).open("/about")
    assert status == 200 and "smtp_user" in page and "smtp_password" in page, page[-2000:]
    assert SECRET not in page


# Every spelling Trac reads as a rule for the panels themselves (the most specific
# rule wins), and a less specific one.
REENABLE = (
    "trac.admin.web_ui.PluginAdminPanel",
    "trac.admin.web_ui.loggingadminpanel.*",
    "trac.admin.*",
)


def test_a_project_trac_ini_cannot_turn_the_panel_back_on(site: Stack):
    ini = f"{TRAC}/beta/conf/trac.ini"
    for rule in REENABLE:
        trac_admin(site, "beta", "config", "set", "components", rule, "enabled")
    time.sleep(1.1)  # Trac rereads trac.ini when its time stamp changes (whole seconds)
    status, page = upload_plugin(site, "evil_two.py")
    assert status in (403, 404), (status, page[-1500:])
    panel_is_absent(site)
    nothing_installed(site)
    # At the next start the project's own rules are removed, with a line in the log.
    site.compose("restart", "web")
    site.wait_healthy(120)
    left = site.exec("cat", ini).stdout.lower()
    assert "pluginadminpanel" not in left and "loggingadminpanel" not in left, left
    assert "trac.admin.* = enabled" in left  # (less specific: it loses to the shared rule)
    logs = site.compose("logs", "web").stdout
    assert re.search(r"beta: .*removed its own \[components\] .*pluginadminpanel", logs), logs[
        -3000:
    ]
    panel_is_absent(site)
    nothing_installed(site)


def test_trac_components_cannot_turn_the_panel_on(image: str):
    for env in (
        {"TRAC_COMPONENTS": "trac.admin.web_ui.PluginAdminPanel"},
        {"TRAC_INI__components__trac.admin.web_ui.pluginadminpanel": "enabled"},
    ):
        args = [a for key, value in env.items() for a in ("-e", f"{key}={value}")]
        name = f"tbtest-locked-{uuid.uuid4().hex[:8]}"
        try:  # (a start that is not refused would serve on: bounded, then removed)
            result = run(
                ["timeout", "60", "docker", "run", "--name", name, "--rm", *args, image],
                check=False,
                timeout=90,
            )
        finally:
            run(["docker", "rm", "-f", name], check=False)
        assert result.returncode not in (0, 124), result.stdout[-2000:]
        said = (result.stdout + result.stderr).splitlines()
        errors = [line for line in said if "pluginadminpanel" in line.lower()]
        assert errors and "stays off in every project" in errors[0], said[-20:]


# -- Finding 3: a repository above BZR_ROOT ---------------------------------------------


def add_repository_in_panel(stack: Stack, name: str, directory: str) -> tuple[int, str]:
    bob = as_bob(stack)
    return bob.open(
        "/admin/versioncontrol/repository",
        {
            "name": name,
            "type": "bzr",
            "dir": directory,
            "add_repos": "Add",
            "__FORM_TOKEN": bob.form_token(),
        },
    )


def alpha_through(stack: Stack, name: str) -> tuple[int, str]:
    return as_bob(stack).open(f"/browser/{name}/bzr/alpha/trunk/alpha.txt")


def test_bob_cannot_read_alpha_directly(site: Stack):
    status, page = as_bob(site).open("/browser/beta.txt")
    assert status == 200 and WORDS["beta"] in page, page[-1500:]
    status, page = as_bob(site, "alpha").open("/browser/alpha.txt")
    assert status == 403 and WORDS["alpha"] not in page


def test_the_admin_panel_refuses_a_repository_above_the_tree(site: Stack):
    status, page = add_repository_in_panel(site, "above", "/srv")
    assert status == 200, page[-1500:]
    assert any("must be located below" in w for w in warnings(page)), warnings(page)
    status, page = alpha_through(site, "above")
    assert WORDS["alpha"] not in page, (status, page[-1500:])


def test_a_repository_outside_the_tree_is_refused_wherever_it_comes_from(site: Stack):
    # trac-admin checks no prefix; a link inside the tree passes the panel's textual check.
    trac_admin(site, "beta", "repository", "add", "cli-above", "/srv", "bzr")
    site.exec("ln", "-s", "/srv", "/srv/bzr/beta/up", user="www-data")
    status, page = add_repository_in_panel(site, "linked", "/srv/bzr/beta/up")
    assert status == 200, page[-1500:]
    for name in ("cli-above", "linked"):
        status, page = alpha_through(site, name)
        assert WORDS["alpha"] not in page, (name, status, page[-1500:])
        assert "is not inside the Bazaar tree /srv/bzr" in page, (name, page[-2500:])
    # A repository inside the tree still works.
    trac_admin(site, "beta", "repository", "add", "inside", "/srv/bzr/beta/trunk", "bzr")
    status, page = as_bob(site).open("/browser/inside/beta.txt")
    assert status == 200 and WORDS["beta"] in page, page[-1500:]


# -- Finding 10: BZR_ANONYMOUS_READ=false and Trac's source views -------------------------


def source_pages(word: str) -> dict[str, str]:
    quoted = urllib.parse.quote(word)
    return {
        "browser": "/browser",
        "file": "/browser/beta.txt",
        "raw": "/export/1/beta.txt",
        "log": "/log/",
        "changeset": "/changeset/1",
        "zip": "/changeset/1?format=zip",
        "timeline": "/timeline?changeset=on&daysback=3",
        "search": f"/search?q={quoted}&changeset=on",
    }


def test_anonymous_visitors_get_no_source_view_when_anonymous_reads_are_off(site: Stack):
    anonymous = TracUser(site.url("/trac/beta"))
    bob = as_bob(site)
    word = WORDS["beta"]
    # The front page (it shows what anonymous may see) names no branch and no commit.
    status, _, front = site.get("/trac/")
    assert status == 200 and 'href="/trac/beta"' in front, front[-2000:]
    assert "/bzr/beta/trunk" not in front and f"the {word} change" not in front, front[-3000:]
    for view, path in source_pages(word).items():
        status, page = anonymous.open(path)
        shown = f"the {word} change" in page or "beta inside" in page  # (search repeats the word)
        assert not shown, (view, status, page[-1500:])
        if view not in ("timeline", "search"):  # (those answer, without the changesets)
            assert status in (403, 404), (view, status)
        status, page = bob.open(path)
        assert status == 200, (view, status, page[-1500:])
        if view in ("file", "raw", "log", "changeset", "timeline"):
            assert word in page, (view, page[-1500:])
    # The rest of Trac stays as it was for anonymous visitors.
    for path in ("/", "/wiki/WikiStart", "/report/1", "/roadmap"):
        status, page = anonymous.open(path)
        assert status == 200, (path, status, page[-1500:])


# -- Finding 2: references and stacking lead readers past the rules ----------------------


def bob_smart(stack: Stack, verb: bytes, *args: bytes, body: bytes | None = None) -> tuple:
    """One smart request of bob's to /bzr/beta/ (his, read-write), as brz sends it."""
    token = base64.b64encode(f"{BOB[0]}:{BOB[1]}".encode()).decode()
    request = urllib.request.Request(
        stack.url("/bzr/beta/.bzr/smart"),
        data=smart_request(verb, *args, body=body),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return smart_reply(response.read())


def write_reference(stack: Stack, name: str, target: str) -> None:
    """beta/NAME becomes a branch reference to `target`, with plain mkdir and put."""
    for directory in (name, f"{name}/.bzr", f"{name}/.bzr/branch"):
        assert bob_smart(stack, b"mkdir", directory.encode(), b"")[0] == b"S"
    files = {
        ".bzr/branch-format": b"Bazaar-NG meta directory, format 1\n",
        ".bzr/branch/format": b"Bazaar-NG Branch Reference Format 1\n",
        ".bzr/branch/location": f"file://{target}".encode(),
    }
    for path, content in files.items():
        reply = bob_smart(stack, b"put", f"{name}/{path}".encode(), b"", body=content)
        assert reply[0] == b"S", reply


def test_a_reference_does_not_carry_readers_past_the_rules(site: Stack):
    write_reference(site, "leak", "/srv/bzr/alpha/trunk")
    write_reference(site, "ref", "/srv/bzr/beta/secret")
    token = base64.b64encode(f"{BOB[0]}:{BOB[1]}".encode()).decode()
    request = urllib.request.Request(
        site.url("/bzr/beta/"), headers={"Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        folder = response.read().decode()
    assert "leak" in folder and "ref" in folder, folder[-3000:]
    for word in (WORDS["alpha"], WORDS["beta/secret"]):
        assert word not in folder, folder[-3000:]
    # In Trac: the secret branch is refused to bob directly, and through the reference.
    bob = as_bob(site)
    status, page = bob.open("/browser/all/secret/secret.txt")
    assert status == 403 and WORDS["beta/secret"] not in page
    for path in ("/browser/all/ref/secret.txt", "/browser/all/ref", "/log/all/ref"):
        status, page = bob.open(path)
        assert WORDS["beta/secret"] not in page, (path, status, page[-2000:])
    status, page = bob.open("/browser/all/trunk/beta.txt")  # the rest of the folder still shows
    assert status == 200 and WORDS["beta"] in page, page[-2000:]
