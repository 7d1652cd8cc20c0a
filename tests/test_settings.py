"""The settings table: defaults, validation of every variable, _FILE secrets."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from trac_breezy.container import settings
from trac_breezy.container.settings import RepositoryLink

ROOT = Path(__file__).resolve().parent.parent

# Values that could change the meaning of the Apache configuration they would
# be written into. Every one must be refused for every setting.
HOSTILE_VALUES = [
    "/srv/bzr\nInclude /etc/shadow",
    "/srv/bzr\rX",
    '/srv/bzr" env=x',
    "/srv/bzr'",
    "/srv/bzr\\",
    "/srv/${HOME}",
    "/srv/%{GLOBAL}",
    "/srv/<Location />",
    "/srv/bzr>",
    "/srv/`id`",
    "/srv/bzr\x00",
    "/srv/bzr\x1b[31m",
    "/srv/bzr\x7f",
    "/srv/bzr\x85",
    "/srv/bzr\udcff",  # an undecodable byte, as os.environ hands it over
    " /srv/bzr",
    "/srv/bzr\t",
]


def test_defaults_make_a_working_configuration():
    loaded = settings.load({})
    assert loaded.trac_url_path == "/trac"
    assert loaded.bzr_url_path == "/bzr"
    assert loaded.bzr_root == Path("/srv/bzr")
    assert loaded.trac_env_parent_dir == Path("/var/lib/trac")
    assert loaded.bzr_allow_writes is True
    assert loaded.bzr_anonymous_read is True
    assert loaded.admin_user == ""
    assert loaded.listen_port == 8080
    assert loaded.puid is None and loaded.pgid is None
    assert loaded.trac_projects == () and loaded.trac_repositories == ()


def test_values_are_parsed_once_into_their_types():
    loaded = settings.load(
        {
            "BZR_ALLOW_WRITES": "Off",
            "WSGI_THREADS": "7",
            "PUID": "1000",
            "TRAC_PROJECTS": "code, docs,",
            "TRAC_REPOSITORIES": "code=code/trunk, docs:manual=docs",
        }
    )
    assert loaded.bzr_allow_writes is False
    assert loaded.wsgi_threads == 7 and loaded.puid == 1000
    assert loaded.trac_projects == ("code", "docs")
    assert loaded.trac_repositories == (
        RepositoryLink("code", "", "code/trunk"),
        RepositoryLink("docs", "manual", "docs"),
    )


def test_every_field_is_a_row_of_the_table():
    assert [s.name for s in settings.SETTINGS] == [
        f.name.upper() for f in dataclasses.fields(settings.Settings)
    ]


def test_secrets_stay_out_of_the_settings_repr():
    loaded = settings.load({"ADMIN_USER": "admin", "ADMIN_PASSWORD": "s3cret-value"})
    assert "s3cret-value" not in repr(loaded)


def test_empty_means_the_default():
    assert settings.load({"BZR_ROOT": "", "LISTEN_PORT": ""}).bzr_root == Path("/srv/bzr")


def test_every_default_passes_its_own_validation():
    for setting in settings.SETTINGS:
        assert settings.check_apache_safe(setting.default) is None, setting.name
        assert setting.validate(setting.default) is None, setting.name


@pytest.mark.parametrize("name", [s.name for s in settings.SETTINGS if s.in_apache_config])
@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=repr)
def test_hostile_value_is_refused_and_named(name, value):
    with pytest.raises(settings.SettingsError) as caught:
        settings.load({name: value})
    assert len(caught.value.messages) == 1
    assert caught.value.messages[0].startswith(name + "=")


def test_password_may_hold_any_printable_character_but_no_line_break():
    env = {"ADMIN_USER": "admin", "ADMIN_PASSWORD": "a\"b'c\\d<e>${f}%{g} h"}
    assert settings.load(env).admin_password == env["ADMIN_PASSWORD"]
    with pytest.raises(settings.SettingsError) as caught:
        settings.load({"ADMIN_USER": "admin", "ADMIN_PASSWORD": "secret\nInclude x"})
    (message,) = caught.value.messages
    assert message.startswith("ADMIN_PASSWORD=(hidden) ")
    assert "secret" not in message


def test_admin_user_needs_a_password():
    with pytest.raises(settings.SettingsError, match="ADMIN_USER is set but ADMIN_PASSWORD"):
        settings.load({"ADMIN_USER": "admin"})


def test_admin_password_from_a_file(private_dir):
    secret = private_dir / "pw"
    secret.write_text("s3cret\n")
    env = {"ADMIN_USER": "admin", "ADMIN_PASSWORD_FILE": str(secret), "ADMIN_PASSWORD": ""}
    assert settings.load(env).admin_password == "s3cret"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ADMIN_USER", "-admin"),
        ("ADMIN_USER", "a:b"),
        ("BZR_ANONYMOUS_READ", "sometimes"),
        ("HTPASSWD_PATH", "relative/htpasswd"),
        ("TRAC_URL_PATH", "trac"),
        ("TRAC_URL_PATH", "/trac/"),
        ("TRAC_URL_PATH", "/"),
        ("TRAC_URL_PATH", "/a/../b"),
        ("TRAC_URL_PATH", "/a b"),
        ("BZR_URL_PATH", "/bzr/.."),
        ("BZR_ROOT", "srv/bzr"),
        ("BZR_ROOT", "/srv/../etc"),
        ("BZR_ROOT", "/srv/bzr/"),
        ("TRAC_ENV_PARENT_DIR", "/var/lib/trac with space"),
        ("TRAC_BASE_URL", "ftp://example.org/"),
        ("TRAC_BASE_URL", "example.org"),
        ("TRAC_LOCALE", "en_US.UTF-8@x"),
        ("BZR_ALLOW_WRITES", "maybe"),
        ("WSGI_PROCESSES", "0"),
        ("WSGI_PROCESSES", "65"),
        ("WSGI_THREADS", "-1"),
        ("WSGI_THREADS", "2.5"),
        ("LISTEN_PORT", "80"),
        ("LISTEN_PORT", "70000"),
        ("LOG_LEVEL", "loud"),
        ("PUID", "0"),
        ("PUID", "abc"),
        ("PGID", "-5"),
    ],
)
def test_invalid_value_is_refused_with_the_fix(name, value):
    with pytest.raises(settings.SettingsError) as caught:
        settings.load({name: value})
    (message,) = caught.value.messages
    assert message.startswith(f"{name}=")
    assert f"fix or unset {name}" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRAC_URL_PATH", "/projects/trac"),
        ("BZR_ROOT", "/data/bzr-2.0"),
        ("TRAC_BASE_URL", "https://trac.example.org:8443/trac"),
        ("TRAC_LOCALE", "de_DE"),
        ("BZR_ALLOW_WRITES", "Yes"),
        ("WSGI_THREADS", "256"),
        ("PUID", "1000"),
    ],
)
def test_valid_value_is_kept(name, value):
    row = settings.BY_NAME[name]
    assert getattr(settings.load({name: value}), name.lower()) == row.convert(value)


def test_all_errors_are_reported_at_once():
    with pytest.raises(settings.SettingsError) as caught:
        settings.load({"WSGI_THREADS": "x", "LOG_LEVEL": "y"})
    assert [m.split("=")[0] for m in caught.value.messages] == ["WSGI_THREADS", "LOG_LEVEL"]


def test_overlapping_url_paths_are_refused():
    with pytest.raises(settings.SettingsError, match="overlap"):
        settings.load({"TRAC_URL_PATH": "/code", "BZR_URL_PATH": "/code/bzr"})


def test_value_from_file(private_dir):
    secret = private_dir / "port"
    secret.write_text("9090\n")
    assert settings.load({"LISTEN_PORT_FILE": str(secret)}).listen_port == 9090


def test_value_from_file_is_validated_too(private_dir):
    secret = private_dir / "root"
    secret.write_text('/srv/x"\nInclude /etc/passwd\n')
    with pytest.raises(settings.SettingsError, match=r"^BZR_ROOT="):
        settings.load({"BZR_ROOT_FILE": str(secret)})


def test_missing_file_names_the_variable(private_dir):
    with pytest.raises(settings.SettingsError, match=r"^LISTEN_PORT_FILE=.*cannot read"):
        settings.load({"LISTEN_PORT_FILE": str(private_dir / "absent")})


def test_variable_and_its_file_together_are_refused(private_dir):
    secret = private_dir / "port"
    secret.write_text("9090")
    with pytest.raises(settings.SettingsError, match="both set"):
        settings.load({"LISTEN_PORT": "9090", "LISTEN_PORT_FILE": str(secret)})


CONFIGURATION = ROOT / "docs" / "configuration.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def test_readme_lists_every_variable_exactly_as_the_table_says():
    """docs/configuration.md (the README's way in to the variables) shows the table as declared."""
    page = CONFIGURATION.read_text()
    assert settings.markdown_table() in page, (
        "docs/configuration.md's table of variables differs from "
        "trac_breezy/container/settings.py; paste the output of "
        "`python -m trac_breezy.container.settings` into docs/configuration.md"
    )


def test_every_documented_variable_exists():
    page = CONFIGURATION.read_text()
    table = page.split(settings.markdown_table().splitlines()[0], 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)`", table, re.M))
    assert documented == set(settings.BY_NAME)


def test_the_architecture_page_says_where_every_variable_lands():
    """The "Where it lands" column left the user's table for docs/architecture.md."""
    page = ARCHITECTURE.read_text()
    assert settings.lands_table() in page, (
        "docs/architecture.md's table of where each variable lands differs from "
        "trac_breezy/container/settings.py; paste the output of "
        "`python -m trac_breezy.container.settings --lands` into docs/architecture.md"
    )


# -- HTTPS -----------------------------------------------------------------------------------


def test_https_is_off_until_a_certificate_is_given():
    loaded = settings.load({})
    assert (loaded.tls_cert_file, loaded.tls_key_file) == ("", "")
    assert loaded.tls_port == 8443 and loaded.tls_hsts == 63072000
    assert loaded.tls_redirect_http == "" and loaded.trusted_proxies == ()


def test_https_values_are_parsed_once():
    loaded = settings.load(
        {
            "TLS_CERT_FILE": "/run/secrets/trac-breezy/tls.crt",
            "TLS_KEY_FILE": "/run/secrets/trac-breezy/tls.key",
            "TLS_HSTS": "Off",
            "TRUSTED_PROXIES": "172.18.0.1, 10.1.2.3/8,fd00::/8",
            "TLS_REDIRECT_HTTP": "https://example.org:8443",
        }
    )
    assert loaded.tls_hsts == 0
    assert loaded.trusted_proxies == ("172.18.0.1/32", "10.0.0.0/8", "fd00::/8")
    assert loaded.tls_redirect_http == "https://example.org:8443"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TLS_CERT_FILE", "tls.crt"),
        ("TLS_KEY_FILE", "/run/secrets/../tls.key"),
        ("TLS_PORT", "443"),
        ("TLS_HSTS", "two years"),
        ("TLS_HSTS", "-1"),
        ("TLS_REDIRECT_HTTP", "http://example.org"),
        ("TLS_REDIRECT_HTTP", "https://example.org/trac"),
        ("TRUSTED_PROXIES", "proxy.example.org"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("TRUSTED_PROXIES", "fe80::1%eth0"),
        ("TRUSTED_PROXIES", "0.0.0.0/0"),
        ("TRUSTED_PROXIES", "10.0.0.1,::/0"),
        ("TRUSTED_PROXIES", ","),
    ],
)
def test_invalid_https_value_is_refused_with_the_fix(name, value):
    with pytest.raises(settings.SettingsError) as caught:
        settings.load({name: value})
    (message,) = caught.value.messages
    assert message.startswith(f"{name}=") and f"fix or unset {name}" in message


def test_trusting_every_address_is_refused_with_the_reason():
    with pytest.raises(settings.SettingsError, match="trusts every address"):
        settings.load({"TRUSTED_PROXIES": "0.0.0.0/0"})


def test_certificate_and_key_go_together_on_a_port_of_their_own():
    with pytest.raises(settings.SettingsError) as caught:
        settings.load({"TLS_CERT_FILE": "/run/secrets/trac-breezy/tls.crt"})
    assert caught.value.messages == [
        "TLS_CERT_FILE is set but TLS_KEY_FILE is empty; set both for HTTPS, or neither"
    ]
    with pytest.raises(settings.SettingsError, match=r"^TLS_KEY_FILE is set but TLS_CERT_FILE"):
        settings.load({"TLS_KEY_FILE": "/run/secrets/trac-breezy/tls.key"})
    env = {"TLS_CERT_FILE": "/a.crt", "TLS_KEY_FILE": "/a.key", "TLS_PORT": "8080"}
    with pytest.raises(settings.SettingsError, match=r"^TLS_PORT=8080 is LISTEN_PORT too"):
        settings.load(env)
    assert settings.load({"TLS_PORT": "8080"}).tls_port == 8080  # HTTPS off: no clash
