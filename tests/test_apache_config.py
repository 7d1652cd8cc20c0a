"""Apache's configuration as rendered from apache/httpd.conf.j2 and the settings."""

from __future__ import annotations

import re
from pathlib import Path

from trac_breezy.container import settings
from trac_breezy.setenv import SmartServerEnviron, TracEnviron
from trac_breezy.startup import apache_config

ROOT = Path(__file__).resolve().parent.parent


def render(env: dict[str, str]) -> str:
    context = apache_config.template_context(settings.load(env), health_token="0123abcd")
    return apache_config.render(context, template_dir=ROOT / "apache")


def test_default_config_routes_both_apps():
    conf = render({})
    assert "Listen 8080\n" in conf
    assert re.search(r"^WSGIScriptAlias /trac \S+/wsgi/trac.wsgi$", conf, re.M)
    assert re.search(
        r'^WSGIScriptAliasMatch "\^/bzr/\(\?:\.\*/\)\?\\\.bzr/smart\$" \S+/bzr.wsgi$', conf, re.M
    )
    assert 'AliasMatch "^/bzr/(?!(?:.*/)?\\.bzr/smart$)(.*)$" "/srv/bzr/$1"' in conf
    assert "WSGIDaemonProcess trac processes=2 threads=15 " in conf
    assert "WSGIDaemonProcess bzr processes=2 threads=8 " in conf
    trac_block = conf.split("<Location /trac>", 1)[1].split("</Location>", 1)[0]
    bzr_block = conf.split("<Location /bzr/>", 1)[1].split("</Location>", 1)[0]
    assert "WSGIProcessGroup trac\n" in trac_block and "WSGIProcessGroup bzr\n" in bzr_block
    assert "WSGIImportScript /usr/share/trac-breezy/wsgi/bzr.wsgi process-group=bzr " in conf
    assert "RequestReadTimeout handshake=0 header=10-20,MinRate=500 body=10,MinRate=500" in conf
    assert "\nTimeout 60\n" in conf and "queue-timeout=30" in conf
    # The restart safety net waits for a push longer than the socket timeout allows.
    assert "maximum-requests=20000 graceful-timeout=30" in conf
    assert "shutdown-timeout=20 maximum-requests=5000 graceful-timeout=900" in conf
    assert "python-eggs=/run/trac-breezy/server/egg-cache" in conf
    assert "WSGIApplicationGroup %{GLOBAL}" in conf
    assert 'SetEnv trac.env_parent_dir "/var/lib/trac"' in conf
    assert 'SetEnv bzr_wsgi.root "/srv/bzr"' in conf
    assert 'SetEnv bzr_wsgi.prefix "/bzr/"' in conf
    assert 'SetEnv bzr_wsgi.mode "read-write"' in conf
    assert "Require expr -z %{HTTP:Authorization}" in conf  # anonymous reads
    assert 'AuthUserFile "/var/lib/trac-breezy/htpasswd"' in conf
    assert "LimitRequestBody 0" in conf
    htdocs = apache_config.trac_htdocs()
    assert Path(htdocs, "css", "trac.css").is_file()
    assert f'AliasMatch "^/trac/[^/]+/chrome/common/(.+)$" "{htdocs}/$1"' in conf
    assert "trac.base_url" not in conf and "trac.locale" not in conf
    assert 'SetEnv trac_breezy.realm "trac-breezy"' in conf


def test_settings_land_where_the_table_says():
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
    # pushes, Trac logins, and the files of the tree (no anonymous reads)
    assert conf.count('AuthUserFile "/data/auth/users"') == 3


def test_setenv_lines_sit_inside_their_location():
    conf = render({"TRAC_LOCALE": "fr"})
    trac_block = conf.split("<Location /trac>", 1)[1].split("</Location>", 1)[0]
    bzr_block = conf.split("<Location /bzr/>", 1)[1].split("</Location>", 1)[0]
    assert "trac.locale" in trac_block and "bzr_wsgi" not in trac_block
    assert "bzr_wsgi.root" in bzr_block and "trac.locale" not in bzr_block
    # Pushes are announced to Trac's parent directory, read from the pushing request.
    assert 'SetEnv trac.env_parent_dir "/var/lib/trac"' in bzr_block


def test_every_key_the_apps_read_is_set_where_they_read_it():
    conf = render({"TRAC_BASE_URL": "https://example.org/trac", "TRAC_LOCALE": "fr"})
    trac_block = conf.split("<Location /trac>", 1)[1].split("</Location>", 1)[0]
    bzr_block = conf.split("<Location /bzr/>", 1)[1].split("</Location>", 1)[0]
    for key in TracEnviron.KEYS.values():
        assert f"SetEnv {key} " in trac_block, key
    for key in SmartServerEnviron.KEYS.values():
        assert f"SetEnv {key} " in bzr_block, key
    # What the smart server would read back is what the settings say.
    environ = dict(re.findall(r'SetEnv (\S+) "([^"]*)"', bzr_block))
    assert SmartServerEnviron.from_environ(environ) == SmartServerEnviron(
        root="/srv/bzr", prefix="/bzr/", mode="read-write", realm="trac-breezy"
    )


def test_url_paths_are_escaped_in_regular_expressions():
    conf = render({"BZR_URL_PATH": "/code.bzr", "TRAC_URL_PATH": "/tr.ac"})
    assert 'WSGIScriptAliasMatch "^/code\\.bzr/' in conf
    assert 'AliasMatch "^/code\\.bzr/(?!' in conf
    assert '<LocationMatch "^/tr\\.ac/[^/]+/login$">' in conf
    assert "^/code.bzr" not in conf and "^/tr.ac" not in conf
    assert "<Location /code.bzr/>" in conf  # <Location> is literal


def test_the_tree_is_read_only_and_private_on_the_directory_too():
    private = render({"BZR_ANONYMOUS_READ": "false"})
    directory = private.split("<Directory /srv/bzr>", 1)[1].split("</Directory>", 1)[0]
    assert "AllowMethods GET HEAD OPTIONS" in directory
    assert "Require valid-user" in directory and "Require all granted" not in directory
    assert 'AuthUserFile "/var/lib/trac-breezy/htpasswd"' in directory
    public = render({})
    directory = public.split("<Directory /srv/bzr>", 1)[1].split("</Directory>", 1)[0]
    assert "AllowMethods GET HEAD OPTIONS" in directory and "Require all granted" in directory


def test_trace_is_off():
    assert "\nTraceEnable Off\n" in render({})


def test_pushed_files_are_inert_and_trac_pages_get_the_usual_headers():
    conf = render({})
    bzr_block = conf.split("<Location /bzr/>", 1)[1].split("</Location>", 1)[0]
    assert 'Header always set X-Content-Type-Options "nosniff"' in bzr_block
    assert 'Header always set Content-Security-Policy "sandbox"' in bzr_block
    directory = conf.split("<Directory /srv/bzr>", 1)[1].split("</Directory>", 1)[0]
    assert "ForceType text/plain" in directory
    trac_block = conf.split("<Location /trac>", 1)[1].split("</Location>", 1)[0]
    assert 'Header setifempty X-Frame-Options "SAMEORIGIN"' in trac_block


def test_failed_logins_are_limited_per_address_unless_turned_off():
    conf = render({})
    assert "LoadModule qos_module" in conf
    # Only a 401 to a request that sent credentials counts: a prompt is no failure.
    assert 'SetEnvIf Authorization "." TB_CREDENTIALS_SENT' in conf
    assert "QS_SetEnvIf TB_CREDENTIALS_SENT TB_REFUSED TB_LOGIN_FAILED=1" in conf
    assert "QS_ClientEventLimitCount 10 300 TB_LOGIN_FAILED" in conf
    assert 'ErrorDocument 429 "too many failed logins from your address: try again in 5 ' in conf
    tuned = render({"LOGIN_FAILURE_LIMIT": "3", "LOGIN_LOCKOUT_SECONDS": "3600"})
    assert "QS_ClientEventLimitCount 3 3600 TB_LOGIN_FAILED" in tuned
    off = render({"LOGIN_FAILURE_LIMIT": "0"})
    assert "qos" not in off.lower() and "TB_LOGIN_FAILED" not in off


def test_smart_responses_leave_in_large_chunks_and_plain_files_unbuffered():
    conf = render({})
    wsgi_dir = conf.split("<Directory /usr/share/trac-breezy/wsgi>", 1)[1].split("</Directory>")[0]
    files = wsgi_dir.split('<Files "bzr.wsgi">', 1)[1].split("</Files>")[0]
    assert "SetOutputFilter BUFFER" in files and "BufferSize 262144" in files
    assert conf.count("SetOutputFilter BUFFER") == 1
    assert "WSGIChunkedRequest On" in conf.split("<Location /bzr/>", 1)[1].split("</Location>")[0]


def test_the_client_plugin_is_served_alone_from_its_folder():
    conf = render({})
    plugin = apache_config.client_plugin()
    assert plugin.is_file()
    assert f'Alias /client/trac_breezy_streaming.py "{plugin}"' in conf
    folder = conf.split(f"<Directory {plugin.parent}>", 1)[1].split("</Directory>", 1)[0]
    assert '<Files "trac_breezy_streaming.py">' in folder and "Require all granted" in folder
