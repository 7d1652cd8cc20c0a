"""What Apache's `SetEnv` hands the two apps: every key, declared once.

The design of this image: each app is configured per request by `SetEnv` in
Apache's configuration, never by `os.environ` in its WSGI script, so one
minimal script serves any number of Trac parents and Bazaar roots. This module
is the contract between the two ends: `startup.apache_config` renders these
dataclasses into `SetEnv` lines, and the apps read them back from each
request's WSGI environ with `from_environ`. It imports nothing of ours, so
both the start-up code and the code inside mod_wsgi can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

# The Basic-auth realm of pushes and Trac logins: one realm, so a browser or
# brz that knows the password for one knows it for the other.
REALM = "trac-breezy"

# Where tree-files.wsgi sends a plain file it allowed, for Apache to serve
# itself (an internal redirect: a URL no client may ask for directly).
TREE_FILES_INTERNAL_PREFIX = "/.tree-files"

# The two modes of the smart server.
READ_ONLY = "read-only"
READ_WRITE = "read-write"
MODES = (READ_ONLY, READ_WRITE)


class MisconfiguredError(LookupError):
    """A key the app needs is missing or invalid in the request's environ."""


def key(name: str, default: str | None = None) -> Any:
    """A field whose value Apache hands the app as `SetEnv name value`.

    Any, as `dataclasses.field` itself returns: the field's annotation says its type.
    """
    if default is None:
        return field(metadata={"key": name})
    return field(metadata={"key": name}, default=default)


class SetEnvBlock:
    """A frozen dataclass of `key(...)` fields: one `<Location>`'s `SetEnv` lines."""

    KEYS: ClassVar[dict[str, str]]  # field name -> SetEnv key, filled in by `keyed`

    def setenv(self) -> list[tuple[str, str]]:
        """(key, value) for each field that has a value."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self))  # type: ignore[arg-type]
        return [(self.KEYS[name], value) for name, value in values if value]


def keyed(cls: type[SetEnvBlock]) -> type[SetEnvBlock]:
    cls.KEYS = {f.name: f.metadata["key"] for f in fields(cls)}  # type: ignore[arg-type]
    return cls


@keyed
@dataclass(frozen=True)
class SmartServerEnviron(SetEnvBlock):
    """What the Bazaar smart server needs per request (its `<Location>`)."""

    root: str = key("bzr_wsgi.root")
    prefix: str = key("bzr_wsgi.prefix")  # the URL path of the tree, ending with "/"
    mode: str = key("bzr_wsgi.mode")
    realm: str = key("bzr_wsgi.realm")
    # AUTHZ_FILE: who may read and write which path (trac_breezy.authz); "": anyone.
    authz_file: str = key("bzr_wsgi.authz_file", default="")
    # Where each request in progress keeps a file, for the stop to wait on
    # (smart_server.in_flight); "": nowhere.
    requests_dir: str = key("bzr_wsgi.requests_dir", default="")

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> SmartServerEnviron:
        keys = cls.KEYS
        root, prefix = environ.get(keys["root"]), environ.get(keys["prefix"])
        mode = environ.get(keys["mode"], READ_ONLY)
        if not root or not prefix:
            raise MisconfiguredError(f"{keys['root']} and {keys['prefix']} must be set with SetEnv")
        if mode not in MODES:
            raise MisconfiguredError(f"{keys['mode']} must be one of {MODES}, not {mode!r}")
        return cls(
            root=root,
            prefix=prefix if prefix.endswith("/") else prefix + "/",
            mode=mode,
            realm=environ.get(keys["realm"], REALM),
            authz_file=environ.get(keys["authz_file"], ""),
            requests_dir=environ.get(keys["requests_dir"], ""),
        )


@keyed
@dataclass(frozen=True)
class TracEnviron(SetEnvBlock):
    """What Trac needs per request: Trac's own keys (read by its
    `dispatch_request`), plus the realm our logout component answers with."""

    env_parent_dir: str = key("trac.env_parent_dir")
    # No `trac.base_url`: Trac takes it as the URL of every project (their
    # parent's), so each project's own `[trac] base_url` carries TRAC_BASE_URL
    # (trac_breezy.admin.global_config).
    locale: str = key("trac.locale", default="")
    realm: str = key("trac_breezy.realm", default=REALM)


# Set by Apache (`SetEnvIfExpr ... tb_healthcheck`, apache/httpd.conf.j2) on the
# container's own healthcheck requests: a smart `hello` every 5 s, which must
# not look like a push in flight to a stop (smart_server.in_flight).
HEALTHCHECK_KEY = "tb_healthcheck"

# Pushes are announced to the Trac projects under this directory: the smart
# server's `<Location>` carries Trac's own key too, and the announcer (Trac's
# side, wired in bzr.wsgi) reads it from the pushing request's environ.
TRAC_ENV_PARENT_DIR_KEY = TracEnviron.KEYS["env_parent_dir"]
TRAC_REALM_KEY = TracEnviron.KEYS["realm"]


@keyed
@dataclass(frozen=True)
class PagesEnviron(SetEnvBlock):
    """What the pages for browsers need (`trac_app.front`): the front page at
    Trac's root and the pages of the Bazaar tree's folders. Each shows both
    apps, so each needs both apps' places: its own keys, one block, set in
    one `<LocationMatch>` over both."""

    trac_url: str = key("trac_breezy.trac_url")  # TRAC_URL_PATH, no trailing "/"
    env_parent_dir: str = key("trac_breezy.env_parent_dir")
    bzr_url: str = key("trac_breezy.bzr_url")  # BZR_URL_PATH, no trailing "/"
    bzr_root: str = key("trac_breezy.bzr_root")
    bzr_mode: str = key("trac_breezy.bzr_mode")  # READ_ONLY or READ_WRITE
    anonymous_read: str = key("trac_breezy.anonymous_read")  # "yes" or "no"
    base_url: str = key("trac_breezy.base_url", default="")  # TRAC_BASE_URL
    client_plugin_url: str = key("trac_breezy.client_plugin_url", default="")
    authz_file: str = key("trac_breezy.authz_file", default="")  # AUTHZ_FILE
    # Why the start left projects unserved (JSON, name -> one line); "": none kept.
    project_errors: str = key("trac_breezy.project_errors", default="")

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> PagesEnviron:
        values = {name: environ.get(k, "") for name, k in cls.KEYS.items()}
        missing = [cls.KEYS[n] for n in ("trac_url", "env_parent_dir", "bzr_url", "bzr_root")]
        if not all(environ.get(k) for k in missing):
            raise MisconfiguredError(f"{', '.join(missing)} must be set with SetEnv")
        if values["bzr_mode"] not in MODES:
            raise MisconfiguredError(f"{cls.KEYS['bzr_mode']} must be one of {MODES}")
        return cls(**values)

    @property
    def writable(self) -> bool:
        return self.bzr_mode == READ_WRITE

    @property
    def public(self) -> bool:
        """Can anyone read the branches without a password?"""
        return self.anonymous_read == "yes"
