"""The entrypoint's pure parts: who to run as, volume checks, the rendered config."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from trac_breezy import entrypoint, settings

ROOT = Path(__file__).resolve().parent.parent
ROOT_ID = entrypoint.Identity(0, 0)


@pytest.fixture
def share(monkeypatch):
    monkeypatch.setattr(entrypoint, "SHARE_DIR", ROOT)


def render(env: dict[str, str]) -> str:
    return entrypoint.render_httpd_conf(
        entrypoint.template_context(settings.load(env), health_token="0123abcd")
    )


def test_default_config_routes_both_apps(share):
    conf = render({})
    assert "Listen 8080\n" in conf
    assert re.search(r"^WSGIScriptAlias /trac \S+/wsgi/trac.wsgi$", conf, re.M)
    assert re.search(
        r'^WSGIScriptAliasMatch "\^/bzr/\(\?:\.\*/\)\?\\\.bzr/smart\$" \S+/bzr.wsgi$', conf, re.M
    )
    assert 'AliasMatch "^/bzr/(?!(?:.*/)?\\.bzr/smart$)(.*)$" "/srv/bzr/$1"' in conf
    assert "WSGIDaemonProcess trac-breezy processes=2 threads=15 " in conf
    assert "python-eggs=/run/trac-breezy/egg-cache" in conf
    assert "WSGIApplicationGroup %{GLOBAL}" in conf
    assert 'SetEnv trac.env_parent_dir "/var/lib/trac"' in conf
    assert 'SetEnv bzr_wsgi.root "/srv/bzr"' in conf
    assert 'SetEnv bzr_wsgi.prefix "/bzr/"' in conf
    assert 'SetEnv bzr_wsgi.mode "read-write"' in conf
    assert "Require expr -z %{HTTP:Authorization}" in conf  # anonymous reads
    assert 'AuthUserFile "/var/lib/trac-breezy/htpasswd"' in conf
    assert "LimitRequestBody 0" in conf
    htdocs = entrypoint.trac_htdocs()
    assert Path(htdocs, "css", "trac.css").is_file()
    assert f'AliasMatch "^/trac/[^/]+/chrome/common/(.+)$" "{htdocs}/$1"' in conf
    assert "trac.base_url" not in conf and "trac.locale" not in conf


def test_settings_land_where_the_table_says(share):
    conf = render(
        {
            "TRAC_URL_PATH": "/projects",
            "BZR_URL_PATH": "/code",
            "BZR_ROOT": "/data/bzr",
            "TRAC_ENV_PARENT_DIR": "/data/trac",
            "TRAC_BASE_URL": "https://example.org/projects",
            "TRAC_LOCALE": "de_DE",
            "BZR_ALLOW_WRITES": "no",
            "BZR_ANONYMOUS_READ": "off",
            "HTPASSWD_PATH": "/data/auth/users",
            "WSGI_PROCESSES": "3",
            "WSGI_THREADS": "7",
            "LISTEN_PORT": "9000",
            "LOG_LEVEL": "info",
        }
    )
    assert "Listen 9000\n" in conf and "LogLevel info\n" in conf
    assert re.search(r"^WSGIScriptAlias /projects ", conf, re.M)
    assert "<Location /projects>" in conf and "<Location /code/>" in conf
    assert '"/data/bzr/$1"' in conf and "<Directory /data/bzr>" in conf
    assert 'SetEnv trac.env_parent_dir "/data/trac"' in conf
    assert 'SetEnv trac.base_url "https://example.org/projects"' in conf
    assert 'SetEnv trac.locale "de_DE"' in conf
    assert 'SetEnv bzr_wsgi.prefix "/code/"' in conf
    assert 'SetEnv bzr_wsgi.mode "read-only"' in conf
    bzr_block = conf.split("<Location /code/>")[1].split("</Location>")[0]
    assert "Require expr -z" not in bzr_block  # no anonymous reads
    assert "%{HTTP:X-Trac-Breezy-Health} == '0123abcd'" in bzr_block
    assert "processes=3 threads=7 " in conf
    assert conf.count('AuthUserFile "/data/auth/users"') == 2  # pushes and Trac logins


def test_setenv_lines_sit_inside_their_location(share):
    conf = render({"TRAC_LOCALE": "fr"})
    trac_block = conf.split("<Location /trac>", 1)[1].split("</Location>", 1)[0]
    bzr_block = conf.split("<Location /bzr/>", 1)[1].split("</Location>", 1)[0]
    assert "trac.locale" in trac_block and "bzr_wsgi" not in trac_block
    assert "bzr_wsgi.root" in bzr_block and "trac." not in bzr_block


def test_identity_defaults_to_www_data_for_a_root_owned_tree(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown a test directory")
    os.chown(tmp_path, 0, 0)
    values = settings.load({"BZR_ROOT": str(tmp_path)})
    assert entrypoint.resolve_identity(values, ROOT_ID) == entrypoint.Identity(33, 33)


def test_identity_follows_the_owner_of_the_tree(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown a test directory")
    os.chown(tmp_path, 1234, 4321)
    values = settings.load({"BZR_ROOT": str(tmp_path)})
    assert entrypoint.resolve_identity(values, ROOT_ID) == entrypoint.Identity(1234, 4321)
    values = settings.load({"BZR_ROOT": str(tmp_path), "PGID": "77"})
    assert entrypoint.resolve_identity(values, ROOT_ID) == entrypoint.Identity(1234, 77)


def test_puid_and_pgid_win(tmp_path):
    values = settings.load({"BZR_ROOT": str(tmp_path), "PUID": "2000", "PGID": "3000"})
    assert entrypoint.resolve_identity(values, ROOT_ID) == entrypoint.Identity(2000, 3000)


def test_not_root_means_run_as_we_are(tmp_path):
    me = entrypoint.Identity(1500, 1500)
    values = settings.load({"BZR_ROOT": str(tmp_path), "PUID": "2000"})
    assert entrypoint.resolve_identity(values, me) == me


def test_missing_volume_is_a_clear_error(tmp_path):
    with pytest.raises(entrypoint.StartupError, match=r"^BZR_ROOT=\S+ does not exist; mount"):
        entrypoint.check_directory("BZR_ROOT", str(tmp_path / "absent"), ROOT_ID, False)


def test_a_file_is_not_a_volume(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(entrypoint.StartupError, match="is not a directory"):
        entrypoint.check_directory("BZR_ROOT", str(tmp_path / "f"), ROOT_ID, False)


def test_unwritable_volume_names_owner_and_fix(tmp_path):
    tmp_path.chmod(0o755)
    stranger = entrypoint.Identity(tmp_path.stat().st_uid + 4242, tmp_path.stat().st_gid + 4242)
    entrypoint.check_directory("BZR_ROOT", str(tmp_path), stranger, need_write=False)
    with pytest.raises(entrypoint.StartupError, match="cannot read and write; set PUID/PGID"):
        entrypoint.check_directory("BZR_ROOT", str(tmp_path), stranger, need_write=True)


def test_main_refuses_a_bad_value_before_anything_else(monkeypatch, capsys):
    monkeypatch.setattr(os, "environ", {"WSGI_THREADS": "4\nInclude /etc/passwd"})
    assert entrypoint.main(["supervisord"]) == entrypoint.EXIT_CONFIG
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("trac-breezy: error: WSGI_THREADS=")
