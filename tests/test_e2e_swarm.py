"""End to end on Docker Swarm: deploy/swarm.yaml with 3 replicas behind HAProxy.

The test makes a one-node swarm of the test engine (`docker swarm init`,
address pools that no host route overlaps), deploys the stack with the
image under test and local stand-ins for the official haproxy and postgres
images (built from Debian's packages: no registry is reachable here), and
leaves the swarm at the end, whatever happened.

Reaching one replica in particular: overlay addresses are not routable from
the host, so a checker container joins the stack's (attachable) network and
runs brz and HTTP requests from there against each replica's own address.
That is a client like any other, outside every replica, whose life does not
depend on theirs; `docker exec` into a replica would make one replica the
client of the others, and HAProxy backends per replica would be a test-only
door in the users' configuration. Load for the rolling update and the kill
comes from the host through HAProxy's published port, as users' traffic
does.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from stack import ADMIN, ROOT, Brz, Stack, free_port, run, write_credentials

pytestmark = pytest.mark.e2e

HAPROXY_IMAGE = "trac-breezy-test/haproxy:3.0"
POSTGRES_IMAGE = "trac-breezy-test/postgres:17"
STACK_FILE = ROOT / "deploy" / "swarm.yaml"
REPLICAS = 3
PROJECT = "swarmcode"
PG_PASSWORD = "swarm: a random password"
# (the swarm's default address pool, the stack network's subnet): the first
# pair that no route of the host overlaps.
CANDIDATE_NETWORKS = (
    ("10.230.0.0/16", "10.231.231.0/24"),
    ("172.26.0.0/16", "172.27.231.0/24"),
    ("10.130.0.0/16", "10.131.231.0/24"),
)
CHECKER_ENV = ("-e", "HOME=/tmp/checker", "-e", "BRZ_EMAIL=Checker <checker@example.org>")

HTTP_GET = """
import sys, urllib.request, urllib.error
headers = {"Cookie": sys.argv[2]} if len(sys.argv) > 2 else {}
try:
    request = urllib.request.Request(sys.argv[1], headers=headers)
    with urllib.request.urlopen(request, timeout=60) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as error:
    status, body = error.code, error.read()
print(status)
sys.stdout.write(body.decode("utf-8", "replace"))
"""

# Trac's login page with Basic credentials; prints the trac_auth cookie it sets.
TRAC_LOGIN = """
import base64, http.client, sys
host, path, user, password = sys.argv[1:5]
conn = http.client.HTTPConnection(host, 8080, timeout=60)
token = base64.b64encode(f"{user}:{password}".encode()).decode()
conn.request("GET", path, headers={"Authorization": "Basic " + token})
response = conn.getresponse()
response.read()
cookies = [c.split(";")[0] for c in response.headers.get_all("Set-Cookie") or []]
print(response.status, *[c for c in cookies if c.startswith("trac_auth=")])
"""

NEW_TICKET = (
    "import sys; from trac.env import open_environment; from trac.ticket.model import Ticket; "
    "t = Ticket(open_environment(sys.argv[1])); "
    "t.populate({'summary': sys.argv[2], 'reporter': 'tester', 'status': 'new'}); print(t.insert())"
)


def host_routes() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination in the host's routing table (/proc/net/route)."""
    routes = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        dest, mask = (struct.pack("<L", int(fields[i], 16)) for i in (1, 7))
        if fields[1] != "00000000":  # not the default route
            routes.append(
                ipaddress.IPv4Network(f"{socket.inet_ntoa(dest)}/{socket.inet_ntoa(mask)}")
            )
    return routes


def choose_networks() -> tuple[str, str]:
    routes = host_routes()
    for pool, subnet in CANDIDATE_NETWORKS:
        wanted = (ipaddress.IPv4Network(pool), ipaddress.IPv4Network(subnet))
        if not any(w.overlaps(r) for w in wanted for r in routes):
            return pool, subnet
    pytest.fail(f"every candidate address pool overlaps a host route ({routes}); add one")
    raise AssertionError  # not reached


@dataclass(frozen=True)
class Replica:
    container: str
    ip: str


@dataclass
class Swarm:
    """The deployed stack: its services, replicas, and a client on its network."""

    name: str
    port: int
    subnet: str
    env: dict[str, str]
    checker: str = ""

    def service(self, short: str) -> str:
        return f"{self.name}_{short}"

    def containers(self, short: str, healthy_only: bool = False) -> list[str]:
        args = ["--filter", f"label=com.docker.swarm.service.name={self.service(short)}"]
        if healthy_only:
            args += ["--filter", "health=healthy"]
        return run(["docker", "ps", "-q", "--no-trunc", *args]).stdout.split()

    def replicas(self) -> list[Replica]:
        found = []
        for container in self.containers("web", healthy_only=True):
            networks = json.loads(
                run(
                    ["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", container]
                ).stdout
            )
            found.append(Replica(container, networks[f"{self.name}_net"]["IPAddress"]))
        return sorted(found, key=lambda r: r.ip)

    def wait_replicas(self, count: int, timeout: float, without: set[str] = frozenset()) -> None:
        """`count` healthy replicas that HAProxy serves, none of them in `without`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = [r for r in self.replicas() if r.container not in without]
            if len(ready) == count and self.front_status() == 200:
                return
            time.sleep(1)
        tasks = run(["docker", "service", "ps", "--no-trunc", self.service("web")], check=False)
        logs = run(["docker", "service", "logs", "--raw", self.service("web")], check=False)
        pytest.fail(
            f"{count} healthy replicas were not there within {timeout} s:\n{tasks.stdout}\n"
            f"{(logs.stdout + logs.stderr)[-4000:]}"
        )

    def front_status(self) -> int:
        try:
            return Stack("unused", self.port, "").get("/trac/")[0]
        except OSError:
            return 0

    def exec(self, container: str, *args: str, user: str | None = None, check: bool = True):
        as_user = ["--user", user] if user else []
        return run(["docker", "exec", *as_user, container, *args], check=check, timeout=300)

    def client(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """A command in the checker container (brz, python), on the stack's network."""
        return run(["docker", "exec", *CHECKER_ENV, self.checker, *args], check=check, timeout=300)

    def get(self, replica: Replica, path: str, cookie: str = "") -> tuple[int, str]:
        url = f"http://{replica.ip}:8080{path}"
        out = self.client("python", "-c", HTTP_GET, url, *([cookie] if cookie else [])).stdout
        status, _, body = out.partition("\n")
        return int(status), body

    def psql(self, sql: str) -> str:
        (container,) = self.containers("postgres")
        return self.exec(
            container, "psql", "-U", "trac", "-d", "trac", "-At", "-c", sql
        ).stdout.strip()

    def stack_deploy(self) -> None:
        run(
            [
                "docker",
                "stack",
                "deploy",
                "--resolve-image",
                "never",
                "-c",
                str(STACK_FILE),
                self.name,
            ],
            env={**os.environ, **self.env},
            timeout=120,
        )


def bzr_url(replica: Replica, path: str) -> str:
    return f"bzr+http://{replica.ip}:8080/bzr/{path}"


def build_haproxy_image() -> str:
    """The stand-in, built (from cache when unchanged) from tests/haproxy/ each run."""
    proxies = [
        a
        for var in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY")
        if os.environ.get(var)
        for a in ("--build-arg", var)
    ]
    run(
        ["docker", "build", "-q", *proxies, "-t", HAPROXY_IMAGE, str(ROOT / "tests" / "haproxy")],
        timeout=900,
    )
    return HAPROXY_IMAGE


def leave(swarm: Swarm) -> None:
    """Stack, networks, swarm and volumes gone, each step bounded; never raises."""
    run(["docker", "rm", "-f", swarm.checker], check=False)
    run(["docker", "stack", "rm", swarm.name], check=False)
    deadline = time.monotonic() + 90
    label = f"label=com.docker.stack.namespace={swarm.name}"
    while time.monotonic() < deadline:
        left = run(["docker", "ps", "-aq", "--filter", label], check=False).stdout.split()
        nets = run(["docker", "network", "ls", "-q", "--filter", label], check=False).stdout.split()
        if not left and not nets:
            break
        time.sleep(1)
    run(["docker", "swarm", "leave", "--force"], check=False)
    for volume in ("trac", "bzr", "auth", "backups", "postgres"):
        for _ in range(10):
            if (
                run(["docker", "volume", "rm", f"{swarm.name}_{volume}"], check=False).returncode
                == 0
            ):
                break
            missing = run(["docker", "volume", "inspect", f"{swarm.name}_{volume}"], check=False)
            if missing.returncode != 0:
                break
            time.sleep(1)


@pytest.fixture(scope="module")
def swarm(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    state = run(["docker", "info", "-f", "{{.Swarm.LocalNodeState}}"]).stdout.strip()
    if state != "inactive":
        pytest.fail(
            f"this Docker engine is already in a swarm ({state}); the test makes and leaves its "
            "own: leave that one first (`docker swarm leave --force`) if it is a leftover"
        )
    run(
        [str(ROOT / "scripts" / "make-postgres-image")],
        env={**os.environ, "POSTGRES_IMAGE": POSTGRES_IMAGE},
        timeout=1200,
    )
    build_haproxy_image()
    pool, subnet = choose_networks()
    secrets = tmp_path_factory.mktemp("swarm-secrets")
    (secrets / "admin-password").write_text(ADMIN[1] + "\n")
    (secrets / "postgres-password").write_text(PG_PASSWORD + "\n")
    name = f"tbswarm{os.getpid()}"
    swarm = Swarm(
        name=name,
        port=free_port(),
        subnet=subnet,
        env={
            "TRAC_BREEZY_IMAGE": image,
            "HAPROXY_IMAGE": HAPROXY_IMAGE,
            "POSTGRES_IMAGE": POSTGRES_IMAGE,
            "SECRETS_DIR": str(secrets),
            "TRAC_BREEZY_SUBNET": subnet,
            "ADMIN_USER": ADMIN[0],
        },
        checker=f"{name}-checker",
    )
    swarm.env["HTTP_PORT"] = str(swarm.port)
    started = time.monotonic()
    run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1", "--default-addr-pool", pool])
    try:
        swarm.stack_deploy()
        swarm.wait_replicas(REPLICAS, timeout=300)
        print(
            f"swarm: {REPLICAS} healthy replicas behind HAProxy "
            f"{time.monotonic() - started:.0f} s after init"
        )
        run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                swarm.checker,
                "--network",
                f"{name}_net",
                "--entrypoint",
                "sleep",
                image,
                "3600",
            ]
        )
        swarm.client("mkdir", "-p", "/tmp/checker/.config/breezy")
        swarm.client(
            "python",
            "-c",
            "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
            "/tmp/checker/.config/breezy/authentication.conf",
            f"[swarm]\nscheme=http\nuser={ADMIN[0]}\npassword={ADMIN[1]}\n",
        )
        yield swarm
    finally:
        leave(swarm)


@pytest.fixture(scope="module")
def project(swarm: Swarm) -> str:
    """A project made through one replica, with its branch and ticket 1."""
    first = swarm.replicas()[0]
    swarm.exec(first.container, "trac-breezy-project", "create", PROJECT, "Swarm Code")
    swarm.client("brz", "init-shared-repo", bzr_url(first, PROJECT))
    env = f"/var/lib/trac/{PROJECT}"
    swarm.exec(
        first.container,
        "trac-admin",
        env,
        "repository",
        "add",
        "(default)",
        f"/srv/bzr/{PROJECT}",
        "bzr",
        user="www-data",
    )
    for summary in ("It crashes", "It is slow"):
        swarm.exec(first.container, "python", "-c", NEW_TICKET, env, summary, user="www-data")
    swarm.client("brz", "init", "/tmp/checker/work")
    commit(swarm, "/tmp/checker/work", "README", "hello", "Start")
    swarm.client("brz", "push", "-d", "/tmp/checker/work", bzr_url(first, f"{PROJECT}/trunk"))
    return PROJECT


def commit(swarm: Swarm, tree: str, name: str, text: str, message: str) -> None:
    swarm.client(
        "python",
        "-c",
        "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')",
        f"{tree}/{name}",
        text,
    )
    swarm.client("brz", "add", "-q", tree)
    swarm.client("brz", "commit", "-q", "-m", message, tree)


def test_three_replicas_each_at_its_own_address_and_no_sqlite(swarm: Swarm):
    replicas = swarm.replicas()
    assert len({r.ip for r in replicas}) == REPLICAS
    assert all(ipaddress.ip_address(r.ip) in ipaddress.ip_network(swarm.subnet) for r in replicas)
    resolved = swarm.client(
        "python", "-c", "import socket; print(sorted(socket.gethostbyname_ex('tasks.web')[2]))"
    ).stdout
    assert resolved.strip() == str(sorted(r.ip for r in replicas))
    # Every project in PostgreSQL: no replica took the SQLite guard.
    absent = swarm.exec(
        replicas[0].container,
        "test",
        "!",
        "-e",
        "/var/lib/trac/.trac-breezy-sqlite.lock",
        check=False,
    )
    assert absent.returncode == 0


def test_a_project_made_through_one_replica_is_served_by_all(swarm: Swarm, project: str):
    for replica in swarm.replicas():
        status, page = swarm.get(replica, f"/trac/{project}/wiki/WikiStart")
        assert status == 200 and "Swarm Code" in page, (replica, page[-2000:])


def test_a_push_through_one_replica_closes_a_ticket_that_the_others_show(
    swarm: Swarm, project: str
):
    first, *others = swarm.replicas()
    commit(
        swarm,
        "/tmp/checker/work",
        "crash_fix.py",
        "print('no more crash')",
        "Stop the crash, fixes #1",
    )
    swarm.client("brz", "push", "-d", "/tmp/checker/work", bzr_url(first, f"{project}/trunk"))
    pushed = time.monotonic()
    for replica in others:
        deadline = time.monotonic() + 30
        while True:
            status, page = swarm.get(replica, f"/trac/{project}/ticket/1")
            if status == 200 and "closed" in page and "Stop the crash" in page:
                break
            assert time.monotonic() < deadline, page[-3000:]
            time.sleep(0.2)
    print(
        f"swarm: ticket closed by a push through {first.ip}, shown by the others after "
        f"{time.monotonic() - pushed:.1f} s"
    )
    # A second push, through another replica, that refers to ticket 2.
    commit(swarm, "/tmp/checker/work", "slow.py", "fast", "Speed it up, refs #2")
    swarm.client("brz", "push", "-d", "/tmp/checker/work", bzr_url(others[0], f"{project}/trunk"))
    deadline = time.monotonic() + 30
    while "Speed it up" not in swarm.get(others[1], f"/trac/{project}/ticket/2")[1]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(3)  # time for a second announcement from any replica, if one came
    comments = swarm.psql(
        f"SELECT ticket, count(*) FROM {project}.ticket_change WHERE field = 'comment' "
        "AND newvalue LIKE '%changeset%' GROUP BY ticket ORDER BY ticket"
    )
    assert comments.split() == ["1|1", "2|1"], comments


def test_a_login_holds_across_replicas(swarm: Swarm, project: str):
    first, second, third = swarm.replicas()
    out = swarm.client(
        "python", "-c", TRAC_LOGIN, first.ip, f"/trac/{project}/login", *ADMIN
    ).stdout.split()
    assert out[0] in ("302", "303") and out[1].startswith("trac_auth="), out
    for replica in (second, third):
        status, page = swarm.get(replica, f"/trac/{project}/wiki/WikiStart", cookie=out[1])
        assert (
            status == 200
            and "logged in as" in page
            and ADMIN[0] in page.split("logged in as")[1][:200]
        )
    status, page = swarm.get(second, f"/trac/{project}/wiki/WikiStart")
    assert "logged in as" not in page  # the cookie made the difference


def test_simultaneous_pushes_through_two_replicas(swarm: Swarm, project: str):
    first, second, _ = swarm.replicas()
    trunk = f"{project}/trunk"
    for n in (1, 2):
        swarm.client("rm", "-rf", f"/tmp/checker/race{n}")
        swarm.client("brz", "branch", "-q", bzr_url(first, trunk), f"/tmp/checker/race{n}")
        commit(swarm, f"/tmp/checker/race{n}", f"race{n}.txt", f"racer {n}", f"racer {n}")
    results: dict[int, subprocess.CompletedProcess] = {}
    barrier = threading.Barrier(2)

    def push(n: int, replica: Replica) -> None:
        barrier.wait(timeout=30)
        results[n] = swarm.client(
            "brz", "push", "-d", f"/tmp/checker/race{n}", bzr_url(replica, trunk), check=False
        )

    racers = [
        threading.Thread(target=push, args=(1, first)),
        threading.Thread(target=push, args=(2, second)),
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=300)
    won = [n for n, r in results.items() if r.returncode == 0]
    lost = [r for r in results.values() if r.returncode != 0]
    assert len(won) == 1 and len(lost) == 1, {n: r.stderr[-500:] for n, r in results.items()}
    assert re.search(r"diverged|lock|Lock", lost[0].stderr), lost[0].stderr[-1000:]
    print(
        f"swarm: simultaneous pushes: racer {won[0]} won, the other got: "
        f"{lost[0].stderr.strip().splitlines()[-1]}"
    )
    log = swarm.client("brz", "log", "--line", "-l1", bzr_url(second, trunk)).stdout
    assert f"racer {won[0]}" in log
    check = swarm.exec(
        first.container,
        "env",
        "HOME=/tmp",
        "brz",
        "check",
        f"/srv/bzr/{trunk}",
        user="www-data",
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "error" not in (check.stdout + check.stderr).lower(), check.stdout + check.stderr


# -- operations under load -------------------------------------------------------


@dataclass
class Tally:
    """Requests a steady load made, and those that failed."""

    pages: int = 0
    pulls: int = 0
    pushes: int = 0
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)

    def fail(self, why: str) -> None:
        with self.lock:
            self.failed.append(why)


PAGES = (
    "/trac/",
    "/trac/{p}/wiki/WikiStart",
    "/trac/{p}/ticket/1",
    "/trac/{p}/timeline",
    "/trac/{p}/browser/trunk",
)


def read_pages(front: Stack, tally: Tally, stop: threading.Event, seed: int) -> None:
    n = seed
    for _ in range(100_000):  # bounded; ends by `stop` long before
        if stop.is_set():
            return
        path = PAGES[n % len(PAGES)].format(p=PROJECT)
        n += 1
        try:
            status = front.get(path)[0]
        except OSError as error:
            tally.fail(f"GET {path}: {error}")
            continue
        if status == 200:
            tally.count("pages")
        else:
            tally.fail(f"GET {path}: {status}")


def pull(front: Stack, tally: Tally, stop: threading.Event, work: Path) -> None:
    brz = Brz(work / "home")
    for _ in range(10_000):
        if stop.is_set():
            return
        shutil.rmtree(work / "copy", ignore_errors=True)
        result = brz(
            "branch", "-q", front.bzr_url(f"{PROJECT}/trunk"), str(work / "copy"), check=False
        )
        if result.returncode == 0:
            tally.count("pulls")
        else:
            tally.fail(f"brz branch: {result.stderr.strip()[-300:]}")


def push(front: Stack, tally: Tally, stop: threading.Event, work: Path, number: int) -> None:
    """Commit and push to a branch of its own, over and over, with the admin's password."""
    brz = Brz(work / "home")
    write_credentials(brz, front.port, *ADMIN)
    local = work / "branch"
    brz("init", "-q", str(local))
    branch = f"{PROJECT}/{work.parent.name}-pusher{number}"
    for revision in range(10_000):
        if stop.is_set():
            return
        (local / "file").write_text(f"pusher {number} revision {revision}\n")
        brz("add", "-q", cwd=local)
        brz("commit", "-q", "-m", f"pusher {number} #{revision}", cwd=local)
        result = brz("push", "-q", front.bzr_url(branch), cwd=local, check=False)
        if result.returncode == 0:
            tally.count("pushes")
        else:
            tally.fail(f"brz push: {result.stderr.strip()[-300:]}")
            # A replica killed mid-push leaves its lock, which no other replica
            # breaks (docs/scaling.md): go on with another branch.
            branch += "-next"


@dataclass
class Load:
    tally: Tally
    workers: list[threading.Thread]
    stop: threading.Event
    since: str

    def finish(self) -> Tally:
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=300)
        assert not any(w.is_alive() for w in self.workers)
        return self.tally


def start_load(
    swarm: Swarm, work: Path, readers: int = 3, pullers: int = 2, pushers: int = 1
) -> Load:
    front = Stack("unused", swarm.port, "")
    tally, stop = Tally(), threading.Event()
    since = str(int(time.time()) - 1)
    workers = [
        threading.Thread(target=read_pages, args=(front, tally, stop, n)) for n in range(readers)
    ]
    workers += [
        threading.Thread(target=pull, args=(front, tally, stop, work / f"pull{n}"))
        for n in range(pullers)
    ]
    workers += [
        threading.Thread(target=push, args=(front, tally, stop, work / f"push{n}", n))
        for n in range(pushers)
    ]
    for worker in workers:
        worker.start()
    return Load(tally, workers, stop, since)


# One request in HAProxy's `option httplog` format: client, date, frontend,
# backend/server, timers, status, bytes, cookies, termination state, the
# connection counts ending with retries (`+N`: redispatched), queues, request.
LOG_LINE = re.compile(
    r"^\S+ \[[^\]]+\] http (?P<backend>\S+)/(?P<server>\S+) \S+ (?P<status>-?\d+) \d+ "
    r"\S+ \S+ (?P<state>\S{4}) \d+/\d+/\d+/\d+/\+?(?P<retries>\d+) "
)


def haproxy_requests(swarm: Swarm, since: str) -> tuple[int, list[str], list[str]]:
    """From HAProxy's log since `since`: requests, those that failed, retried ones."""
    logs = run(
        ["docker", "service", "logs", "--raw", "--since", since, swarm.service("haproxy")],
        check=False,
    )
    requests, bad, retried = 0, [], []
    for line in (logs.stdout + logs.stderr).splitlines():
        match = LOG_LINE.match(line)
        if not match:
            continue
        requests += 1
        # 401: brz asks first without its password, as every push does.
        if not match["status"].startswith("2") and match["status"] != "401":
            bad.append(line)
        if match["retries"] != "0":
            retried.append(line)
    return requests, bad, retried


def test_rolling_update_under_load_loses_no_request(swarm: Swarm, project: str, tmp_path: Path):
    before = {r.container for r in swarm.replicas()}
    load = start_load(swarm, tmp_path)
    time.sleep(5)
    started = time.monotonic()
    update = run(
        ["docker", "service", "update", "--detach=false", "--force", swarm.service("web")],
        check=False,
        timeout=400,
    )
    took = time.monotonic() - started
    time.sleep(5)
    tally = load.finish()
    requests, bad, retried = haproxy_requests(swarm, load.since)
    print(
        f"swarm: rolling update of {REPLICAS} replicas in {took:.0f} s under load: "
        f"{tally.pages} pages, {tally.pulls} brz branch, {tally.pushes} brz push, "
        f"{len(tally.failed)} failed; "
        f"HAProxy: {requests} requests, {len(bad)} failed, {len(retried)} retried {retried[:5]}"
    )
    assert update.returncode == 0, update.stdout[-2000:] + update.stderr[-2000:]
    assert tally.failed == [], tally.failed[:10]
    assert bad == [], bad[:10]
    assert tally.pages > 100 and tally.pulls > 5 and tally.pushes > 5
    swarm.wait_replicas(REPLICAS, timeout=60)
    assert not before & {r.container for r in swarm.replicas()}  # every replica replaced
    state = run(
        ["docker", "service", "inspect", "-f", "{{.UpdateStatus.State}}", swarm.service("web")]
    ).stdout
    assert state.strip() == "completed"


def test_killing_a_replica_fails_at_most_its_requests_in_flight(
    swarm: Swarm, project: str, tmp_path: Path
):
    victim = swarm.replicas()[0]
    readers, pullers, pushers = 3, 2, 1
    load = start_load(swarm, tmp_path, readers, pullers, pushers)
    time.sleep(5)
    run(["docker", "kill", victim.container])
    killed = time.monotonic()
    swarm.wait_replicas(REPLICAS, timeout=120, without={victim.container})
    replaced = time.monotonic() - killed
    time.sleep(5)
    tally = load.finish()
    requests, bad, retried = haproxy_requests(swarm, load.since)
    print(
        f"swarm: one replica killed under load, replaced and healthy after {replaced:.0f} s: "
        f"{tally.pages} pages, {tally.pulls} brz branch, {tally.pushes} brz push, "
        f"{len(tally.failed)} failed "
        f"{tally.failed}; HAProxy: {requests} requests, {len(bad)} failed {bad}, "
        f"{len(retried)} retried {retried[:5]}"
    )
    # Each worker has one request in flight at a time, to any replica.
    assert len(tally.failed) <= readers + pullers + pushers, tally.failed
    assert tally.pages > 50


def test_backup_in_one_replica_and_restore_into_the_stack(swarm: Swarm, project: str):
    """README's way: back up in any replica; restore with the web service scaled to
    0, from a one-off container on the stack's network and volumes."""
    first, second, _ = swarm.replicas()
    folder = swarm.exec(first.container, "trac-breezy-backup").stdout.strip()
    for path in (f"{folder}/trac/{project}/db/postgres-db-backup.sql.gz", f"{folder}/bzr.tar.gz"):
        present = swarm.exec(second.container, "test", "-s", path, check=False)
        assert present.returncode == 0, f"{path} missing in another replica"
    revno = swarm.client("brz", "revno", bzr_url(second, f"{project}/trunk")).stdout.strip()

    run(["docker", "service", "scale", "--detach=false", f"{swarm.service('web')}=0"], timeout=180)
    volumes = [
        a
        for volume, target in (
            ("trac", "/var/lib/trac"),
            ("bzr", "/srv/bzr"),
            ("auth", "/var/lib/trac-breezy"),
            ("backups", "/backup"),
        )
        for a in ("-v", f"{swarm.name}_{volume}:{target}")
    ]
    # The loss: the project's files, its schema and its branches.
    one_off = ["docker", "run", "--rm", "--network", f"{swarm.name}_net", *volumes]
    run(
        [
            *one_off,
            swarm.env["TRAC_BREEZY_IMAGE"],
            "rm",
            "-rf",
            f"/var/lib/trac/{project}",
            f"/srv/bzr/{project}",
        ]
    )
    swarm.psql(f"DROP SCHEMA {project} CASCADE")
    secret = Path(swarm.env["SECRETS_DIR"]) / "postgres-password"
    run(
        [
            *one_off,
            "-v",
            f"{secret}:/run/secrets/postgres-password:ro",
            "-e",
            "TRAC_DATABASE_URL=postgres://trac@postgres/trac",
            "-e",
            "TRAC_DATABASE_PASSWORD_FILE=/run/secrets/postgres-password",
            swarm.env["TRAC_BREEZY_IMAGE"],
            "trac-breezy-restore",
            folder,
        ],
        timeout=300,
    )
    run(
        ["docker", "service", "scale", "--detach=false", f"{swarm.service('web')}={REPLICAS}"],
        timeout=300,
    )
    swarm.wait_replicas(REPLICAS, timeout=180)
    for replica in swarm.replicas():
        status, page = swarm.get(replica, f"/trac/{project}/ticket/1")
        assert status == 200 and "It crashes" in page
    after = swarm.client(
        "brz", "revno", bzr_url(swarm.replicas()[0], f"{project}/trunk"), check=False
    )
    assert after.stdout.strip() == revno, after.stderr
