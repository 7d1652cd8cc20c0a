"""Apache's configuration, rendered from apache/httpd.conf.j2 and checked by Apache.

Every value in it comes from the validated settings. The `SetEnv` lines that
configure the two apps per request are rendered from the dataclasses in
`trac_breezy.setenv`, the same ones the apps read them back with, so a key is
never written twice.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import ipaddress
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import jinja2

from trac_breezy import one_line
from trac_breezy.container import paths
from trac_breezy.container.settings import Settings
from trac_breezy.setenv import (
    READ_ONLY,
    READ_WRITE,
    REALM,
    TRAC_ENV_PARENT_DIR_KEY,
    TREE_FILES_INTERNAL_PREFIX,
    PagesEnviron,
    SmartServerEnviron,
    TracEnviron,
)

TEMPLATE = "httpd.conf.j2"
# Where brz users download the project's client plugin, which streams pushes
# (README: "Push"); one fixed URL beside Trac's and Bazaar's paths.
CLIENT_PLUGIN_FILE = "trac_breezy_streaming.py"
CLIENT_PLUGIN_URL = "/client/" + CLIENT_PLUGIN_FILE
# The data (RLIMIT_DATA) each smart-server daemon process may hold: mod_wsgi's
# memory-limit, a net under the bounds of the smart server itself (measured:
# docs/reliability.md, issue 19 finding 4).
BZR_MEMORY_LIMIT = 3 * 1024**3
# Straight to the container's stdout/stderr (PID 1's), not through
# supervisord's pipes, which would make supervisord copy every line.
ACCESS_LOG = "/proc/1/fd/1"
ERROR_LOG = "/proc/1/fd/2"


class ConfigError(Exception):
    """Apache cannot be configured; the text says why and what to do."""


def trac_environ(settings: Settings) -> TracEnviron:
    return TracEnviron(
        env_parent_dir=str(settings.trac_env_parent_dir),
        locale=settings.trac_locale,
        realm=REALM,
    )


def smart_server_environ(settings: Settings) -> SmartServerEnviron:
    return SmartServerEnviron(
        root=str(settings.bzr_root),
        prefix=settings.bzr_url_path + "/",
        mode=READ_WRITE if settings.bzr_allow_writes else READ_ONLY,
        realm=REALM,
        authz_file=settings.authz_file,
        requests_dir=str(paths.SMART_REQUESTS_DIR),
    )


def pages_environ(settings: Settings) -> PagesEnviron:
    """The places of both apps, for the pages for browsers (trac_app/front)."""
    return PagesEnviron(
        trac_url=settings.trac_url_path,
        env_parent_dir=str(settings.trac_env_parent_dir),
        bzr_url=settings.bzr_url_path,
        bzr_root=str(settings.bzr_root),
        bzr_mode=READ_WRITE if settings.bzr_allow_writes else READ_ONLY,
        anonymous_read="yes" if settings.bzr_anonymous_read else "no",
        base_url=settings.trac_base_url,
        client_plugin_url=CLIENT_PLUGIN_URL,
        authz_file=settings.authz_file,
        project_errors=str(paths.PROJECT_ERRORS),
    )


def template_context(settings: Settings, health_token: str) -> dict[str, object]:
    """Everything apache/httpd.conf.j2 refers to."""
    trac = trac_environ(settings)
    return {
        "settings": settings,
        "realm": REALM,
        "health_token": health_token,
        "setenv": {
            "trac": trac.setenv(),
            # The announcer of pushes (Trac's side) reads Trac's parent
            # directory from the pushing request.
            "bzr": [
                *smart_server_environ(settings).setenv(),
                (TRAC_ENV_PARENT_DIR_KEY, trac.env_parent_dir),
            ],
            "pages": pages_environ(settings).setenv(),
        },
        "share_dir": paths.SHARE_DIR,
        "server_run_dir": paths.SERVER_RUN_DIR,
        "home_dir": paths.SERVER_HOME,
        "egg_cache": paths.EGG_CACHE,
        "bzr_memory_limit": BZR_MEMORY_LIMIT,
        "empty_dir": paths.EMPTY_DIR,
        "wsgi_dir": paths.WSGI_DIR,
        "trac_htdocs": trac_htdocs(),
        "client_plugin": client_plugin(),
        "client_plugin_url": CLIENT_PLUGIN_URL,
        "client_plugin_digest": client_plugin_digest(),
        "tree_files_prefix": TREE_FILES_INTERNAL_PREFIX,
        "wsgi_module_conf": paths.APACHE_DIR / "wsgi-module.conf",
        # HTTPS (settings.tls_cert_file): root's copies, made by startup/tls.py.
        "tls_cert": paths.TLS_CERT,
        "tls_key": paths.TLS_KEY,
        "tls_server_name": "",  # the entrypoint puts the certificate's name here
        "access_log": ACCESS_LOG,
        "error_log": ERROR_LOG,
    }


def client_plugin() -> Path:
    """The brz client plugin this image serves for download (see trac_breezy/brz_plugin)."""
    return Path(__file__).resolve().parent.parent / "brz_plugin" / CLIENT_PLUGIN_FILE


def client_plugin_digest() -> str:
    """The plugin's SHA-256, base64 as RFC 9530's Repr-Digest has it: users can
    check what they are about to run in their brz (README: "Push")."""
    return base64.b64encode(hashlib.sha256(client_plugin().read_bytes()).digest()).decode()


def trac_htdocs() -> Path:
    """Trac's static files, in the installed package (found without importing Trac)."""
    spec = importlib.util.find_spec("trac")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("Trac is not installed in this image's Python; rebuild the image")
    return Path(next(iter(spec.submodule_search_locations))) / "htdocs"


# mod_qos names an address range by the start of its text ("10.1." or
# "fd00:"), not in CIDR form; a network expands into at most this many of them.
QOS_MAX_PREFIXES = 256


def qos_address_prefixes(networks: tuple[str, ...]) -> list[str]:
    """`networks` (CIDR) as mod_qos's `QS_SrvMaxConnExcludeIP` addresses and text prefixes.

    Why: mod_qos has no CIDR syntax. A network whose length is not a whole
    byte (IPv4) or group (IPv6) becomes each of its sub-networks at the next
    one when there are at most QOS_MAX_PREFIXES of them, else the enclosing one
    (a wider exemption). IPv6 prefixes stop before a zero group, which the
    address's text may write as "::"; a network that leaves no prefix is not
    exempted at all (an empty prefix would exempt everyone).
    """
    prefixes: list[str] = []
    for text in networks:
        network = ipaddress.ip_network(text)
        if network.prefixlen == network.max_prefixlen:
            prefixes.append(str(network.network_address))
            continue
        step = 8 if network.version == 4 else 16
        boundary = -(-network.prefixlen // step) * step
        if 2 ** (boundary - network.prefixlen) > QOS_MAX_PREFIXES:
            network = network.supernet(new_prefix=boundary - step)
            boundary -= step
        for subnet in network.subnets(new_prefix=boundary):
            prefixes.extend(_qos_prefix(subnet, step))
    return list(dict.fromkeys(prefixes))


def _qos_prefix(subnet: ipaddress.IPv4Network | ipaddress.IPv6Network, step: int) -> list[str]:
    if subnet.prefixlen == subnet.max_prefixlen:
        return [str(subnet.network_address)]
    if subnet.version == 4:
        octets = str(subnet.network_address).split(".")[: subnet.prefixlen // 8]
        return [".".join(octets) + "."] if octets else []
    groups = subnet.network_address.exploded.split(":")[: subnet.prefixlen // step]
    kept: list[str] = []
    for group in groups:
        if int(group, 16) == 0:
            break
        kept.append(format(int(group, 16), "x"))
    return [":".join(kept) + ":"] if kept else []


def render(context: Mapping[str, object], template_dir: Path = paths.APACHE_DIR) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - Apache config, not HTML; values were validated
    )
    # For values inside Apache's regular expressions (PCRE reads `\.` as a dot).
    environment.filters["regex"] = re.escape
    environment.filters["qos_prefixes"] = qos_address_prefixes
    return environment.get_template(TEMPLATE).render(context)


def configtest(conf: Path) -> None:
    """Apache's own check (`apache2 -t`) of the rendered file."""
    result = subprocess.run(
        ["/usr/sbin/apache2", "-t", "-f", str(conf)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        detail = one_line(result.stderr or result.stdout)
        raise ConfigError(f"Apache refused the rendered configuration {conf}: {detail}")
