"""End to end: the real image on a real Docker engine, driven by the real brz client.

Everything here goes through Compose, Apache, mod_wsgi, Breezy's smart server
and Trac exactly as a user's `docker compose up` does.
"""

from __future__ import annotations

import base64
import http.cookiejar
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import new_stack
from stack import ADMIN, ROOT, Brz, Stack, new_ticket, run, side_container

pytestmark = pytest.mark.e2e


def make_branch(brz: Brz, path: Path, files: dict[str, str], message: str) -> Path:
    brz("init", str(path))
    for name, text in files.items():
        (path / name).write_text(text)
    brz("add", cwd=path)
    brz("commit", "-m", message, cwd=path)
    return path


def commit(brz: Brz, tree: Path, name: str, text: str, message: str) -> None:
    (tree / name).write_text(text)
    brz("add", cwd=tree)
    brz("commit", "-m", message, cwd=tree)


def test_shared_repository_push_branch_checkout_pull(stack: Stack, brz: Brz, tmp_path: Path):
    repo = stack.bzr_url("project")
    brz("init-shared-repo", repo)
    assert "shared repository" in brz("info", repo).stdout

    local = make_branch(brz, tmp_path / "local", {"README": "hello\n"}, "first")
    commit(brz, local, "README", "hello\nworld\n", "second")
    brz("push", f"{repo}/trunk", cwd=local)
    info = brz("info", f"{repo}/trunk").stdout
    assert "Repository branch" in info, info  # inside the shared repository

    copy = tmp_path / "copy"
    brz("branch", f"{repo}/trunk", str(copy))
    assert brz.revno(copy) == 2
    assert (copy / "README").read_text() == "hello\nworld\n"

    # A checkout is bound to the server: its commit lands there.
    checkout = tmp_path / "checkout"
    brz("checkout", f"{repo}/trunk", str(checkout))
    commit(brz, checkout, "NEWS", "news\n", "third, from a checkout")
    assert brz.revno(f"{repo}/trunk") == 3

    brz("pull", cwd=copy)
    assert brz.revno(copy) == 3
    assert (copy / "NEWS").read_text() == "news\n"


def test_standalone_branch_push_and_branch_back(stack: Stack, brz: Brz, tmp_path: Path):
    local = make_branch(brz, tmp_path / "solo", {"a.txt": "a\n", "b.bin": "\x00\x01"}, "solo 1")
    target = stack.bzr_url("solo")
    brz("push", target, cwd=local)
    assert "Standalone branch" in brz("info", target).stdout

    back = tmp_path / "back"
    brz("branch", target, str(back))
    assert brz.revno(back) == 1
    assert (back / "b.bin").read_bytes() == b"\x00\x01"

    commit(brz, local, "a.txt", "a\nb\n", "solo 2")
    brz("push", cwd=local)  # to the remembered location
    brz("pull", cwd=back)
    assert (back / "a.txt").read_text() == "a\nb\n"


def test_plain_http_reads(stack: Stack, brz: Brz, tmp_path: Path):
    local = make_branch(brz, tmp_path / "plain", {"f": "plain\n"}, "plain")
    brz("push", stack.bzr_url("plain"), cwd=local)

    copy = tmp_path / "plain-copy"
    brz("branch", stack.bzr_url("plain", scheme="http"), str(copy))
    assert (copy / "f").read_text() == "plain\n"

    status, _, listing = stack.get("/bzr/")
    assert status == 200 and "plain/" in listing
    status, _, fmt = stack.get("/bzr/plain/.bzr/branch-format")
    assert status == 200 and fmt.startswith("Bazaar-NG meta directory")

    # Plain files are only read: other methods get 405 (they used to get 200),
    # and TRACE, which would echo credentials, is off everywhere.
    assert stack.request("POST", "/bzr/plain/.bzr/branch-format", b"x") == 405
    assert stack.request("PUT", "/bzr/plain/new-file", b"x") == 405
    assert stack.request("TRACE", "/bzr/plain/.bzr/branch-format") == 405
    assert stack.request("TRACE", "/trac/") == 405


def test_pushed_files_belong_to_the_unprivileged_server_user(
    stack: Stack, brz: Brz, tmp_path: Path
):
    local = make_branch(brz, tmp_path / "owned", {"f": "x\n"}, "owned")
    brz("push", stack.bzr_url("owned"), cwd=local)
    owners = stack.exec(
        "sh", "-c", "find /srv/bzr/owned -printf '%u:%g\\n' | sort -u"
    ).stdout.split()
    assert owners == ["www-data:www-data"]
    # Nothing the container started runs as root: supervisord, Apache, mod_wsgi.
    # (The sh and awk below are this `exec`, which Docker runs as root, as it runs
    # the HEALTHCHECK command, whose name the kernel cuts to 15 characters.)
    processes = stack.exec(
        "sh",
        "-c",
        "for s in /proc/[0-9]*/status; do awk '/^Name:/{n=$2} /^Uid:/{print n\":\"$2}' $s; done",
    ).stdout.split()
    run_by_docker = ("sh", "awk", "trac-breezy-hea")
    servers = [p for p in processes if p.split(":")[0] not in run_by_docker]
    assert any(p.startswith("apache2:") for p in servers), processes
    assert all(p.endswith(":33") for p in servers), processes


def test_trac_index_and_project_page(stack: Stack):
    stack.exec(
        "trac-admin",
        "/var/lib/trac/alpha",
        "initenv",
        "Alpha Project",
        "sqlite:db/trac.db",
        user="www-data",
    )
    status, _, index = stack.get("/trac/")
    assert status == 200
    assert "Alpha Project" in index and 'href="/trac/alpha"' in index
    status, _, page = stack.get("/trac/alpha/wiki/WikiStart")
    assert status == 200
    assert "<title>" in page and "Alpha Project" in page
    status, _, _ = stack.get("/")
    assert status == 200  # redirected to the index


def test_projects_from_the_setting_and_the_admin_command_and_admin_login(stack: Stack):
    status, _, index = stack.get("/trac/")
    assert status == 200 and 'href="/trac/delta"' in index and 'href="/trac/epsilon"' in index

    created = stack.compose("exec", "-T", "web", "trac-breezy-project", "create", "gamma", "Gamma")
    assert "created gamma" in created.stdout
    assert 'href="/trac/gamma"' in stack.get("/trac/")[2]  # no restart needed
    owner = stack.exec("stat", "-c", "%U", "/var/lib/trac/gamma/db/trac.db").stdout.strip()
    assert owner == "www-data"

    # The admin logs in with the same account that pushes, and is TRAC_ADMIN.
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = urllib.request.Request(stack.url("/trac/gamma/login"))
    login.add_header(
        "Authorization", "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()
    )
    with opener.open(login, timeout=30) as response:
        assert response.status == 200
    assert any(cookie.name == "trac_auth" for cookie in jar)
    with opener.open(stack.url("/trac/gamma/admin"), timeout=30) as response:
        assert response.status == 200 and "Administration" in response.read().decode()
    anonymous = stack.get("/trac/gamma/admin")[0]
    assert anonymous in (403, 404)  # Trac hides the panel from anonymous users
    wrong = urllib.request.Request(stack.url("/trac/gamma/login"))
    wrong.add_header("Authorization", "Basic " + base64.b64encode(b"admin:wrong").decode())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong, timeout=30)
    assert refused.value.code == 401


def test_logout_makes_the_browser_ask_for_the_password_again(stack: Stack):
    """A browser resends its remembered Basic-auth password: after logout it must ask."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    remembered = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()

    def click_login() -> str:
        request = urllib.request.Request(stack.url("/trac/delta/login"))
        request.add_header("Authorization", remembered)
        with browser.open(request, timeout=30) as response:
            return response.read().decode()

    assert "logged in as" in click_login()
    token = next(cookie.value for cookie in jar if cookie.name == "trac_form_token")
    logout = urllib.request.Request(
        stack.url("/trac/delta/logout"),
        data=urllib.parse.urlencode({"__FORM_TOKEN": token}).encode(),
    )
    with browser.open(logout, timeout=30) as response:
        assert "logged in as" not in response.read().decode()

    with pytest.raises(urllib.error.HTTPError) as asked:
        click_login()  # the remembered password is not enough now
    assert asked.value.code == 401
    assert asked.value.headers["WWW-Authenticate"] == 'Basic realm="trac-breezy"'
    assert "Log in again" in asked.value.read().decode()
    assert "logged in as" in click_login()  # what the user types next is taken


def test_trac_static_files_come_from_apache_with_cache_headers(stack: Stack):
    stack.exec(
        "trac-admin",
        "/var/lib/trac/assets",
        "initenv",
        "Assets",
        "sqlite:db/trac.db",
        user="www-data",
    )
    status, _, page = stack.get("/trac/assets/wiki/WikiStart")
    assets = re.findall(r'(?:href|src)="(/trac/assets/chrome/common/[^"?]+)', page)
    assert len(assets) >= 5, assets
    for asset in assets:
        status, headers, _ = stack.get(asset)
        assert status == 200, asset
        # Apache's static-file handler, not Trac: byte ranges, an ETag, our cache policy.
        assert headers.get("Accept-Ranges") == "bytes", (asset, headers)
        assert "ETag" in headers, (asset, headers)
        assert headers.get("Cache-Control") == "public, max-age=604800", (asset, headers)
    # A project's own files (chrome/site) still go through Trac.
    status, headers, _ = stack.get("/trac/assets/chrome/site/missing.css")
    assert status == 404 and "Accept-Ranges" not in headers


def test_smart_server_answers_only_smart_requests(stack: Stack):
    # GET on the smart path is not a smart request; it must not be served as a file either.
    status, _, _ = stack.get("/bzr/.bzr/smart")
    assert status == 405
    status, _, _ = stack.get("/bzr/../../etc/passwd")
    assert status in (400, 403, 404)


def test_read_only_mode(image: str, stack: Stack, brz: Brz, tmp_path: Path):
    """BZR_ALLOW_WRITES=false on the same data: reads work, every write is refused."""
    local = make_branch(brz, tmp_path / "ro", {"f": "1\n"}, "ro 1")
    brz("push", stack.bzr_url("ro"), cwd=local)

    name, readonly = side_container(
        image, {"BZR_ALLOW_WRITES": "false"}, {stack.volume("bzr"): "/srv/bzr"}
    )
    try:
        wait_for_http(readonly.url("/trac/"))
        copy = tmp_path / "ro-copy"
        brz("branch", readonly.bzr_url("ro"), str(copy))
        commit(brz, copy, "f", "2\n", "ro 2")
        refused = brz("push", readonly.bzr_url("ro"), cwd=copy, check=False)
        assert refused.returncode != 0
        assert "read-only" in refused.stderr.lower() or "readonly" in refused.stderr.lower(), (
            refused.stderr
        )
        refused = brz("init-shared-repo", readonly.bzr_url("new-repo"), check=False)
        assert refused.returncode != 0 and "readonly transport" in refused.stderr, refused.stderr
        assert brz.revno(stack.bzr_url("ro")) == 1
        assert (
            run(
                ["docker", "exec", name, "test", "!", "-e", "/srv/bzr/new-repo"], check=False
            ).returncode
            == 0
        )
    finally:
        run(["docker", "rm", "-f", name], check=False)


def wait_for_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout} s")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WSGI_THREADS", '15 display-name=x"'),
        ("BZR_ROOT", "/srv/bzr\nInclude /etc/passwd"),
        ("TRAC_BASE_URL", "http://x/${HOME}"),
        ("BZR_ROOT", "/does/not/exist"),
        ("TRAC_REPOSITORIES", "no-such-project=x"),
    ],
)
def test_bad_setting_stops_the_container_with_its_name(image: str, name: str, value: str):
    result = run(
        ["docker", "run", "--rm", "-e", f"{name}={value}", image], check=False, timeout=120
    )
    assert result.returncode == 2  # EXIT_CONFIG: the container cannot serve
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and name in errors[0], result.stderr


def test_docker_run_with_a_command_runs_it(image: str):
    """docker-library's `override-cmd` check."""
    result = run(["docker", "run", "--rm", image, "brz", "version", "--short"])
    assert result.stdout.strip() == "3.3.23"


def test_the_container_clock_is_utc(image: str):
    """docker-library's `utc` check."""
    result = run(["docker", "run", "--rm", image, "date", "+%Z"])
    assert result.stdout.strip() == "UTC"


def test_no_hard_coded_passwords_in_the_image(image: str):
    """docker-library's `no-hard-coded-passwords` check: no account in
    /etc/shadow has a password (a hash starts with `$`), none is empty."""
    result = run(["docker", "run", "--rm", "--user", "root", image, "cat", "/etc/shadow"])
    accounts = [line.split(":") for line in result.stdout.splitlines() if line]
    assert accounts
    with_password = [a[0] for a in accounts if a[1].startswith("$") or a[1] == ""]
    assert with_password == [], with_password


def buildkit_cli() -> str | None:
    """A docker CLI that builds with BuildKit: Debian's 20.10 one, or any with buildx."""
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    probe = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False)
    return "docker" if probe.returncode == 0 else None


def test_buildkit_builds_the_image_too():
    cli = buildkit_cli()
    if cli is None:
        pytest.skip("this host's docker CLI has no BuildKit; the legacy build ran above")
    result = run(
        [cli, "build", "-q", "-t", "trac-breezy:test-buildkit", str(ROOT)],
        timeout=1800,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run(["docker", "rmi", "trac-breezy:test-buildkit"], check=False)


def test_down_and_up_keeps_everything(stack: Stack, brz: Brz, tmp_path: Path):
    local = make_branch(brz, tmp_path / "keep", {"k": "kept\n"}, "keep")
    brz("push", stack.bzr_url("keep"), cwd=local)
    stack.exec(
        "trac-admin",
        "/var/lib/trac/kept",
        "initenv",
        "Kept Project",
        "sqlite:db/trac.db",
        user="www-data",
    )
    assert new_ticket(stack, "/var/lib/trac/kept", "survives restarts") == 1

    # Graceful stop: supervisord and Apache exit cleanly, well within the grace period.
    started = time.monotonic()
    stack.compose("stop")
    assert time.monotonic() - started < 25
    state = stack.inspect()["State"]
    assert state["ExitCode"] == 0, state
    stack.compose("down")  # keeps the named volumes
    stack.up()

    assert brz.revno(stack.bzr_url("keep")) == 1
    copy = tmp_path / "keep-copy"
    brz("branch", stack.bzr_url("keep"), str(copy))
    assert (copy / "k").read_text() == "kept\n"
    status, _, page = stack.get("/trac/kept/wiki/WikiStart")
    assert status == 200 and "Kept Project" in page
    status, _, page = stack.get("/trac/kept/ticket/1")
    assert status == 200 and "survives restarts" in page
    status, _, index = stack.get("/trac/")
    assert re.search(r"Alpha Project|Kept Project", index)


def test_apache_that_cannot_stay_up_stops_the_container(image: str):
    """If Apache dies at start, supervisord gives up and the container exits non-zero."""
    # A pid file in a missing directory passes Apache's syntax check, but
    # Apache exits at every start when it cannot write it.
    result = run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            image,
            "-c",
            "sed -i 's|^PidFile .*|PidFile /nonexistent/httpd.pid|' "
            "/usr/share/trac-breezy/apache/httpd.conf.j2 && exec docker-entrypoint supervisord",
        ],
        check=False,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "apache could not stay up" in result.stderr + result.stdout


def test_new_stack_uses_no_root_owned_files(image: str):
    """A fresh named volume inherits www-data ownership from the image."""
    stack = new_stack(image, "fresh")
    try:
        stack.up()
        owner = stack.exec("stat", "-c", "%U", "/srv/bzr", "/var/lib/trac").stdout.split()
        assert owner == ["www-data", "www-data"]
    finally:
        stack.compose("down", "-v", check=False)
