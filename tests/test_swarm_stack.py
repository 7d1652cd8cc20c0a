"""deploy/swarm.yaml and deploy/haproxy.cfg agree with the image and with compose.yaml.

The stack file is a second description of the web container beside
compose.yaml; the settings table (trac_breezy/container/settings.py) stays
the one source of truth for what the container reads, and compose.yaml for
its healthcheck and stop time. These checks keep the stack file from drifting
from both, without Docker: tests/test_e2e_swarm.py deploys it.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from trac_breezy.container import settings

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / "deploy" / "swarm.yaml"
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
CONNECTION_HEADROOM = 13  # PostgreSQL's reserved and admin connections, as test_kubernetes


def resolve(value: object) -> str:
    """`${NAME:-default}` as `docker stack deploy` reads it with NAME unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def stack() -> dict:
    return yaml.safe_load(STACK.read_text())


def service(name: str) -> dict:
    return stack()["services"][name]


def compose_web() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["web"]


def web_environment() -> dict[str, str]:
    return {k: resolve(v) for k, v in service("web")["environment"].items()}


def web_settings() -> settings.Settings:
    """The settings as the image loads them, each secret file stood in for (in a
    folder only we can change: root reads NAME_FILE nowhere else)."""
    with tempfile.TemporaryDirectory(dir=Path.home()) as folder:
        env = web_environment()
        for name in [n for n in env if n.endswith("_FILE")]:
            env[name] = str(Path(folder) / name)
            Path(env[name]).write_text("a password\n")
        return settings.load(env)


def replicas() -> int:
    return int(resolve(service("web")["deploy"]["replicas"]))


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match.group(1))


def haproxy() -> str:
    return HAPROXY_CFG.read_text()


def test_every_variable_of_the_web_service_is_a_setting_with_a_valid_value():
    names = {s.name for s in settings.SETTINGS}
    files = {s.name + "_FILE" for s in settings.SETTINGS if s.secret}
    assert set(web_environment()) <= names | files
    web_settings()  # raises SettingsError with every problem


def test_every_password_file_is_a_secret_of_the_service():
    mounted = {f"/run/secrets/{name}" for name in service("web")["secrets"]}
    for name, value in web_environment().items():
        if name.endswith("_FILE"):
            assert value in mounted, name
    # PostgreSQL reads the same file.
    assert service("postgres")["environment"]["POSTGRES_PASSWORD_FILE"] in mounted


def test_several_replicas_keep_every_project_in_postgresql():
    assert replicas() > 1
    url = urlsplit(web_settings().trac_database_url)
    assert url.hostname in stack()["services"], "TRAC_DATABASE_URL must name the stack's server"
    env = service("postgres")["environment"]
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == (url.username, url.path.lstrip("/"))


def test_postgresql_admits_every_connection_trac_may_open():
    """(replicas + 1 started first in an update) x daemon processes x Trac's pool."""
    from trac.db import pool

    loaded = web_settings()
    surge = 1 if service("web")["deploy"]["update_config"]["order"] == "start-first" else 0
    processes = loaded.wsgi_processes + loaded.bzr_wsgi_processes
    needed = (replicas() + surge) * processes * pool._pool_size + CONNECTION_HEADROOM
    command = service("postgres")["command"]
    given = [a.split("=", 1)[1] for a in command if a.startswith("max_connections=")]
    assert given and int(given[-1]) >= needed


def test_healthcheck_and_stop_time_are_compose_yaml_s():
    web = service("web")
    assert web["healthcheck"] == compose_web()["healthcheck"]
    assert seconds(web["stop_grace_period"]) >= seconds(compose_web()["stop_grace_period"])


def test_volumes_are_mounted_where_the_settings_look():
    loaded = web_settings()
    targets = {v.split(":")[1] for v in service("web")["volumes"]}
    assert {
        str(loaded.trac_env_parent_dir),
        str(loaded.bzr_root),
        str(loaded.htpasswd_path.parent),
        "/backup",
    } <= targets


def test_rolling_updates_start_first_gated_and_rolled_back():
    deploy = service("web")["deploy"]
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert "healthcheck" in service("web")  # what gates "started"
    # Never two of these at once: one data directory, one node port.
    for name in ("postgres", "haproxy"):
        assert service(name)["deploy"]["update_config"]["order"] == "stop-first"


def test_no_virtual_ips_and_the_balancer_on_the_node_s_port():
    """VIPs and the routing mesh need IPVS; HAProxy finds replicas by DNS."""
    for name, spec in stack()["services"].items():
        assert spec["deploy"]["endpoint_mode"] == "dnsrr", name
    (port,) = service("haproxy")["ports"]
    assert port["mode"] == "host" and port["target"] == 8080
    assert "ports" not in service("web")


def test_replicas_never_share_a_host_name():
    """Breezy's locks name the host: a replica breaks locks of its own name at start."""
    assert "hostname" not in service("web")


def test_trusted_proxies_is_the_network_haproxy_comes_from():
    (subnet,) = stack()["networks"]["net"]["ipam"]["config"]
    assert web_environment()["TRUSTED_PROXIES"] == resolve(subnet["subnet"])
    assert "option forwardfor" in haproxy()


def test_haproxy_finds_every_replica_and_waits_as_long_as_apache():
    cfg = haproxy()
    assert re.search(r"nameserver \S+ 127\.0\.0\.11:53", cfg)
    (slots,) = re.findall(r"server-template \S+ (\d+) tasks\.web:8080 .*\bcheck\b", cfg)
    assert int(slots) >= replicas() + 1
    assert "hold obsolete 0s" in cfg and "option redispatch" in cfg
    assert re.search(r"http-check send meth GET uri /trac/ ", cfg)
    template = (ROOT / "apache" / "httpd.conf.j2").read_text()
    waits = [int(s) for s in re.findall(r"\bsocket-timeout=(\d+)", template)]
    waits += [int(s) for s in re.findall(r"^Timeout (\d+)$", template, re.M)]
    for name in ("client", "server"):
        (value,) = re.findall(rf"^\s*timeout {name} (\d+)s$", cfg, re.M)
        assert int(value) >= max(waits), name


@pytest.mark.parametrize("name", ["haproxy", "postgres"])
def test_the_users_images_are_the_official_ones(name: str):
    official = {"haproxy": "haproxy:3.0", "postgres": "postgres:17"}[name]
    assert resolve(service(name)["image"]) == official
