"""deploy/kubernetes/: Kubernetes' own schemas, offline, and this image's promises.

No cluster is reachable from this project's machines, so the manifests are
validated, not run: every document against the JSON schemas of the Kubernetes
API that `kubernetes-validate` bundles (strict: an unknown field is an error,
as `kubectl apply --validate=strict` makes it), for the oldest and the newest
Kubernetes release stated below. Then what the schemas cannot know: every
variable is a setting of this image and its value passes the settings'
checks; the probes run the image's healthcheck; more than one replica keeps
the Trac projects in PostgreSQL, which admits every connection Trac may open;
the shared volume is ReadWriteMany and mounted where the settings look; a stop
leaves pushes the time compose.yaml gives them; the Ingress lets a push
through; the replicas never share a host name (Breezy's locks name it).
"""

from __future__ import annotations

import functools
import math
import posixpath
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from trac_breezy.container import settings

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = MANIFESTS / "kustomization.yaml"
# Not a Kubernetes API object (no schema): checked by its own test.
NOT_API_OBJECTS = {KUSTOMIZATION.name}
# Applied by hand instead of kustomize's secretGenerator.
EXAMPLES = {"secret.example.yaml"}
# The oldest and the newest Kubernetes whose schemas we validate against;
# the manifests use nothing newer than the first.
KUBERNETES_VERSIONS = ("1.30", "1.37")

IMAGE = "trac-breezy"
WEB = ("Deployment", "trac-breezy")
SECRET = "trac-breezy-secrets"
# PostgreSQL's default when no `-c max_connections=` is given.
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100
# Connections besides the web daemons': PostgreSQL's 3 reserved for
# superusers, and trac-admin, trac-breezy-backup's pg_dump, psql.
CONNECTION_HEADROOM = 13
INGRESS_NGINX = "nginx.ingress.kubernetes.io/"

Document = dict[str, Any]


# -- reading the manifests -------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(MANIFESTS.glob("*.yaml"))


@functools.cache
def documents() -> tuple[tuple[str, int, Document], ...]:
    """(file name, index in the file, document) of every Kubernetes object."""
    found = []
    for path in manifest_files():
        if path.name in NOT_API_OBJECTS:
            continue
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if document is not None:
                found.append((path.name, index, document))
    return tuple(found)


def deployed() -> list[Document]:
    """The objects `kubectl apply -k` creates (the Secret comes from the generator)."""
    return [doc for name, _, doc in documents() if name not in EXAMPLES]


def one(kind: str, name: str) -> Document:
    matches = [
        doc for _, _, doc in documents() if (doc["kind"], doc["metadata"]["name"]) == (kind, name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def workloads() -> list[Document]:
    return [doc for doc in deployed() if doc["kind"] in ("Deployment", "StatefulSet")]


def pod_spec(workload: Document) -> Document:
    return workload["spec"]["template"]["spec"]


def containers(spec: Document) -> list[Document]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def image_name(container: Document) -> str:
    """`registry/path/name:tag` -> `name`."""
    return container["image"].rsplit("/", 1)[-1].split("@")[0].split(":")[0]


def our_containers() -> list[tuple[Document, Document]]:
    """(pod spec, container) of every container that runs this image."""
    return [
        (pod_spec(w), c)
        for w in workloads()
        for c in containers(pod_spec(w))
        if image_name(c) == IMAGE
    ]


def web_container() -> Document:
    (container,) = [c for c in pod_spec(one(*WEB))["containers"] if image_name(c) == IMAGE]
    return container


def environment(container: Document) -> dict[str, str | None]:
    """The variables a container gets: its ConfigMaps' keys, then its `env`
    (None for a value from elsewhere)."""
    variables: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, f"{container['name']}: envFrom other than a ConfigMap"
        variables.update(one("ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in container.get("env", []):
        variables[variable["name"]] = variable.get("value")
    return variables


@functools.cache
def web_settings() -> settings.Settings:
    """The web container's settings, through the image's own checks (files as placeholders)."""
    environ = {}
    for name, value in environment(web_container()).items():
        assert value is not None, f"{name}: only plain values and *_FILE files are checked"
        if name.endswith("_FILE") and name.removesuffix("_FILE") in settings.BY_NAME:
            environ[name.removesuffix("_FILE")] = "the content of " + value
        else:
            environ[name] = value
    return settings.load(environ)


@functools.cache
def compose_web() -> Document:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["web"]


def seconds(duration: str) -> int:
    """Compose's `35s` (the only form compose.yaml uses)."""
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match.group(1))


def container_path(volume: str) -> str:
    """`${TRAC_DATA:-trac}:/var/lib/trac` or `...:/run/secrets/trac-breezy:ro` -> the path."""
    parts = volume.split(":")
    return parts[-2] if parts[-1] in ("ro", "rw") else parts[-1]


def volumes_by_name(spec: Document) -> dict[str, Document]:
    return {volume["name"]: volume for volume in spec.get("volumes", [])}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


# -- Kubernetes' schemas ---------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "document",
    [pytest.param(doc, id=f"{name}#{index}") for name, index, doc in documents()],
)
def test_every_manifest_validates_against_the_kubernetes_schemas(document: Document, version: str):
    # Raises ValidationError (a wrong field or type) or SchemaNotFoundError
    # (an unknown kind or apiVersion): both fail the test.
    kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_works_offline_and_refuses_unknown_fields():
    """The schemas ship with the package (nothing is fetched), and strict mode
    is strict: a misspelt field inside the pod template is refused."""
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    for version in KUBERNETES_VERSIONS:
        assert (schemas / f"v{version}.0-local-strict" / "_definitions.json").is_file()
    broken = yaml.safe_load(yaml.safe_dump(one(*WEB)))
    broken["spec"]["template"]["spec"]["containers"][0]["lifecycel"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="lifecycel"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_and_makes_the_example_secret():
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    listed = set(kustomization["resources"])
    expected = {p.name for p in manifest_files()} - NOT_API_OBJECTS - EXAMPLES
    assert listed == expected
    namespace = [doc for doc in deployed() if doc["kind"] == "Namespace"]
    assert [doc["metadata"]["name"] for doc in namespace] == [kustomization["namespace"]]
    for _, _, doc in documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == kustomization["namespace"], doc["kind"]
    (generator,) = kustomization["secretGenerator"]
    example = one("Secret", SECRET)
    assert generator["name"] == example["metadata"]["name"]
    keys = {entry.split("=", 1)[0] for entry in generator["files"]}
    assert keys == set(example.get("stringData", {})) | set(example.get("data", {}))
    # The password files it reads stay out of git.
    folders = {PurePosixPath(entry.split("=", 1)[1]).parts[0] for entry in generator["files"]}
    ignored = (MANIFESTS / ".gitignore").read_text().split()
    assert all(f"{folder}/" in ignored for folder in folders)


# -- the settings ----------------------------------------------------------------------------


def test_every_variable_of_our_containers_is_a_setting():
    """Names from the settings table only (or NAME_FILE of a secret one), so a
    typo cannot pass silently; secrets only as files, never as plain values."""
    secret = {name for name, row in settings.BY_NAME.items() if row.secret}
    allowed = set(settings.BY_NAME) | {name + "_FILE" for name in secret}
    for _, container in our_containers():
        names = set(environment(container))
        assert names <= allowed, f"{container['name']}: not settings: {sorted(names - allowed)}"
        assert not names & secret, f"{container['name']}: give {sorted(names & secret)} as _FILE"


def test_the_settings_pass_the_image_s_own_checks():
    loaded = web_settings()  # raises SettingsError naming each bad value
    assert loaded.trac_base_url and loaded.trusted_proxies


def test_every_password_file_comes_from_the_secret_and_is_readable():
    example = one("Secret", SECRET)
    keys = set(example.get("stringData", {})) | set(example.get("data", {}))
    files: dict[str, str] = {}
    for workload in workloads():
        spec = pod_spec(workload)
        volumes = volumes_by_name(spec)
        for container in spec["containers"]:
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
            for name, path in environment(container).items():
                if not name.endswith("_FILE"):
                    continue
                folder, file_name = posixpath.split(path)
                assert folder in mounts, f"{name}={path}: nothing is mounted at {folder}"
                volume = volumes[mounts[folder]["name"]]
                assert volume.get("secret", {}).get("secretName") == SECRET, (
                    f"{name}: not the Secret"
                )
                items = {i["path"]: i for i in volume["secret"].get("items", [])}
                key = items[file_name]["key"] if items else file_name
                assert key in keys, f"{name}={path}: the Secret has no key {key}"
                mode = items.get(file_name, {}).get(
                    "mode", volume["secret"].get("defaultMode", 0o644)
                )
                # Secret files belong to root, with the pod's fsGroup as group if it has one.
                needed = 0o040 if "fsGroup" in spec.get("securityContext", {}) else 0o004
                assert mode & needed, f"{name}: mode {mode:o} hides the file from the pod's user"
                files[name] = key
    # The web pods and PostgreSQL read one and the same password.
    assert files["TRAC_DATABASE_PASSWORD_FILE"] == files["POSTGRES_PASSWORD_FILE"]
    assert "ADMIN_PASSWORD_FILE" in files


def test_the_probes_run_the_image_s_healthcheck():
    healthcheck = compose_web()["healthcheck"]
    assert healthcheck["test"][0] == "CMD"
    command = healthcheck["test"][1:]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[command[0]] == "trac_breezy.startup.healthcheck:main"
    container = web_container()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == command, probe
        assert container[probe]["timeoutSeconds"] >= seconds(healthcheck["timeout"]), probe


# -- more than one replica -------------------------------------------------------------------


def test_more_than_one_replica_keeps_the_trac_projects_in_postgresql():
    web = one(*WEB)
    assert web["spec"]["replicas"] > 1  # what these manifests are for
    url = web_settings().trac_database_url
    assert url, "more than one replica needs TRAC_DATABASE_URL: SQLite on a shared volume is unsafe"
    where = urlsplit(url)
    service = one("Service", where.hostname)
    postgres = one("StatefulSet", "postgres")
    assert matches(service["spec"]["selector"], postgres["spec"]["template"]["metadata"]["labels"])
    assert (where.port or 5432) in {port["port"] for port in service["spec"]["ports"]}
    (server,) = pod_spec(postgres)["containers"]
    env = {variable["name"]: variable.get("value") for variable in server["env"]}
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == (where.username, where.path.lstrip("/"))


def test_postgresql_admits_every_connection_trac_may_open():
    """Trac's pool is process-wide, at most 10 connections per daemon process
    (trac/db/pool.py); Trac's daemons and the smart server's (whose push
    announcer opens Trac projects) each have one. During a rolling update the
    surge pods connect too."""
    from trac.db import pool

    per_process = pool._pool_size
    web = one(*WEB)
    replicas = web["spec"]["replicas"]
    surge = web["spec"]["strategy"]["rollingUpdate"].get("maxSurge", "25%")
    if isinstance(surge, str):
        surge = math.ceil(replicas * int(surge.rstrip("%")) / 100)
    loaded = web_settings()
    processes = loaded.wsgi_processes + loaded.bzr_wsgi_processes
    needed = (replicas + surge) * processes * per_process + CONNECTION_HEADROOM
    (server,) = pod_spec(one("StatefulSet", "postgres"))["containers"]
    args = server.get("args", [])
    given = [a.split("=", 1)[1] for a in args if a.startswith("max_connections=")]
    max_connections = int(given[-1]) if given else POSTGRES_DEFAULT_MAX_CONNECTIONS
    assert max_connections >= needed, f"max_connections={max_connections}, Trac may open {needed}"


def test_the_shared_volume_is_read_write_many_and_mounted_where_the_settings_say():
    loaded = web_settings()
    spec = pod_spec(one(*WEB))
    volumes = volumes_by_name(spec)
    mounts = {m["mountPath"]: m for m in web_container()["volumeMounts"]}
    claims = set()
    for path in (loaded.trac_env_parent_dir, loaded.bzr_root, loaded.htpasswd_path.parent):
        assert str(path) in mounts, f"nothing is mounted at {path}"
        claim = volumes[mounts[str(path)]["name"]]["persistentVolumeClaim"]["claimName"]
        assert "ReadWriteMany" in one("PersistentVolumeClaim", claim)["spec"]["accessModes"]
        claims.add((claim, mounts[str(path)].get("subPath", "")))
    # One shared claim; each part in a directory of its own.
    assert len({claim for claim, _ in claims}) == 1 and len(claims) == 3
    # The same paths as compose.yaml's volumes (named or host directories).
    compose_paths = {container_path(volume) for volume in compose_web()["volumes"]}
    assert {str(p) for p in (loaded.trac_env_parent_dir, loaded.bzr_root)} <= compose_paths
    assert str(loaded.htpasswd_path.parent) in compose_paths
    # The init container makes every directory the web container mounts.
    (init,) = spec["initContainers"]
    (init_mount,) = init["volumeMounts"]
    made = set(init["command"])
    for mount in web_container()["volumeMounts"]:
        if "persistentVolumeClaim" in volumes[mount["name"]]:
            assert mount["name"] == init_mount["name"]
            assert posixpath.join(init_mount["mountPath"], mount["subPath"]) in made


def test_a_stop_leaves_pushes_the_time_compose_gives_them():
    web = one(*WEB)
    spec = pod_spec(web)
    pre_stop = web_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = seconds(compose_web()["stop_grace_period"]) + int(pre_stop[1])
    assert spec["terminationGracePeriodSeconds"] >= needed
    assert web["spec"]["strategy"]["type"] == "RollingUpdate"
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_every_replica_has_a_host_name_of_its_own():
    """Breezy writes the host name into every lock, steals a lock whose holder
    on "this host" is dead, and the container breaks "its own" locks at start:
    two replicas sharing a name would break each other's live locks. Pods of a
    Deployment are named (and host-named) one by one."""
    web = one(*WEB)
    assert web["kind"] == "Deployment"
    spec = pod_spec(web)
    assert "hostname" not in spec and not spec.get("hostNetwork")


def test_kubernetes_puts_no_variables_of_its_own_into_the_settings():
    """Service links would add e.g. SMTP_PORT=tcp://10.0.0.9:25 for a Service
    named `smtp`, which the settings refuse: the container would not start."""
    for workload in workloads():
        assert pod_spec(workload).get("enableServiceLinks") is False, workload["metadata"]["name"]


def test_pods_meet_the_restricted_pod_security_standard():
    """What the namespace enforces. Our pods start as the servers' user, so
    PUID/PGID (which only a start as root reads) are not set."""
    namespace = next(doc for doc in deployed() if doc["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in workloads():
        spec = pod_spec(workload)
        pod = spec.get("securityContext", {})
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault"
        assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
        assert not any("hostPath" in volume for volume in spec.get("volumes", []))
        for container in containers(spec):
            context = {**pod, **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True and context.get("runAsUser", 1) != 0
            assert context.get("allowPrivilegeEscalation") is False, container["name"]
            assert context.get("capabilities") == {"drop": ["ALL"]}, container["name"]
    assert not {"PUID", "PGID"} & set(environment(web_container()))


# -- the way in ------------------------------------------------------------------------------


def test_services_and_the_budget_select_their_pods():
    labels = {
        w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"] for w in workloads()
    }
    for workload in workloads():
        assert matches(
            workload["spec"]["selector"]["matchLabels"], labels[workload["metadata"]["name"]]
        )
    for doc in deployed():
        if doc["kind"] == "Service":
            assert any(matches(doc["spec"]["selector"], pods) for pods in labels.values()), doc
        if doc["kind"] == "PodDisruptionBudget":
            assert matches(doc["spec"]["selector"]["matchLabels"], labels[WEB[1]])
    postgres = one("StatefulSet", "postgres")
    assert one("Service", postgres["spec"]["serviceName"])["spec"]["clusterIP"] == "None"


def test_the_ingress_lets_pushes_through_to_the_web_pods():
    ingress = one("Ingress", "trac-breezy")
    annotations = {
        key.removeprefix(INGRESS_NGINX): value
        for key, value in ingress["metadata"]["annotations"].items()
    }
    # A push is one large POST, chunked by the client plugin, streamed in.
    assert annotations["proxy-body-size"] == "0"
    assert annotations["proxy-request-buffering"] == "off"
    assert annotations["proxy-http-version"] == "1.1"
    assert annotations["proxy-buffering"] == "off"
    # At least as patient as the smart server's daemons and Apache.
    template = (ROOT / "apache" / "httpd.conf.j2").read_text()
    waits = [int(s) for s in re.findall(r"\bsocket-timeout=(\d+)", template)]
    waits += [int(s) for s in re.findall(r"^Timeout (\d+)$", template, re.M)]
    assert waits
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[timeout]) >= max(waits), timeout
    # Host: the public name of TRAC_BASE_URL, with TLS.
    host = urlsplit(web_settings().trac_base_url).hostname
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == host
    assert any(host in tls["hosts"] for tls in ingress["spec"]["tls"])
    assert urlsplit(web_settings().trac_base_url).scheme == "https"
    # Backend -> Service -> the container's port, which is LISTEN_PORT.
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    service = one("Service", backend["name"])
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"]]
    container_ports = {p["name"]: p["containerPort"] for p in web_container()["ports"]}
    assert container_ports[port["targetPort"]] == web_settings().listen_port


def test_the_image_is_the_one_compose_builds():
    default = re.fullmatch(r"\$\{TRAC_BREEZY_IMAGE:-(.+)\}", compose_web()["image"])
    assert default
    for _, container in our_containers():
        assert container["image"] == default.group(1)
