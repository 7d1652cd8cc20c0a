"""Apache's configuration as rendered from apache/httpd.conf.j2 and the settings."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from trac_breezy.container import settings
from trac_breezy.setenv import PagesEnviron, SmartServerEnviron, TracEnviron
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
    assert 'AliasMatch "^/bzr/(?!(?:.*/)?\\.bzr/smart$)(.*[^/])$" "/srv/bzr/$1"' in conf
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
    assert (
        "AuthBasicProvider wsgi\n    WSGIAuthUserScript /usr/share/trac-breezy/wsgi/auth.wsgi"
        in conf
    )
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
    # Each project's own [trac] base_url carries it (Trac would take a
    # trac.base_url as the URL of every project).
    assert "SetEnv trac.base_url" not in conf
    assert 'SetEnv trac.locale "de_DE"' in conf
    assert 'SetEnv bzr_wsgi.prefix "/code/"' in conf
    assert 'SetEnv bzr_wsgi.mode "read-only"' in conf
    bzr_block = conf.split("<Location /code/>")[1].split("</Location>")[0]
    assert "Require expr -z" not in bzr_block  # no anonymous reads
    assert "%{HTTP:X-Trac-Breezy-Health} == '0123abcd'" in bzr_block
    assert "processes=3 threads=7 " in conf
    # pushes, Trac logins, the files of the tree (no anonymous reads), and
    # credentials sent for Trac's expensive pages
    assert conf.count("AuthBasicProvider wsgi") == 4


def test_setenv_lines_sit_inside_their_location():
    conf = render({"TRAC_LOCALE": "fr"})
    trac_block = conf.split("<Location /trac>", 1)[1].split("</Location>", 1)[0]
    bzr_block = conf.split("<Location /bzr/>", 1)[1].split("</Location>", 1)[0]
    assert "trac.locale" in trac_block and "bzr_wsgi" not in trac_block
    assert "bzr_wsgi.root" in bzr_block and "trac.locale" not in bzr_block
    # Pushes are announced to Trac's parent directory, read from the pushing request.
    assert 'SetEnv trac.env_parent_dir "/var/lib/trac"' in bzr_block


def test_every_key_the_apps_read_is_set_where_they_read_it():
    conf = render(
        {
            "TRAC_BASE_URL": "https://example.org/trac",
            "TRAC_LOCALE": "fr",
            "AUTHZ_FILE": "/run/secrets/trac-breezy/authz",
        }
    )
    trac_block = conf.split("<Location /trac>", 1)[1].split("</Location>", 1)[0]
    bzr_block = conf.split("<Location /bzr/>", 1)[1].split("</Location>", 1)[0]
    for key in TracEnviron.KEYS.values():
        assert f"SetEnv {key} " in trac_block, key
    for key in SmartServerEnviron.KEYS.values():
        assert f"SetEnv {key} " in bzr_block, key
    # What the smart server would read back is what the settings say.
    environ = dict(re.findall(r'SetEnv (\S+) "([^"]*)"', bzr_block))
    assert SmartServerEnviron.from_environ(environ) == SmartServerEnviron(
        root="/srv/bzr",
        prefix="/bzr/",
        mode="read-write",
        realm="trac-breezy",
        authz_file="/run/secrets/trac-breezy/authz",
        requests_dir="/run/trac-breezy/server/smart-requests",
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
    assert "AuthBasicProvider wsgi" in directory
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
    assert "QS_ClientEventLimitCount" not in off and "TB_LOGIN_FAILED" not in off


def test_one_address_holds_a_bounded_number_of_connections_proxies_excepted():
    conf = render({})
    assert "LoadModule qos_module" in conf and "\nQS_SrvMaxConnPerIP 64\n" in conf
    assert "QS_SrvMaxConnExcludeIP" not in conf
    assert "QS_SrvMaxConnPerIP" not in render({"MAX_CONNECTIONS_PER_ADDRESS": "0"})
    proxied = render({"TRUSTED_PROXIES": "172.18.0.1, 10.1.0.0/20, fd00::/8, ::/1"})
    excluded = re.findall(r"\nQS_SrvMaxConnExcludeIP (\S+)", proxied)
    # mod_qos matches the start of the address's text: 10.1.0.0/20 is 16 prefixes.
    assert excluded[:3] == ["172.18.0.1", "10.1.0.", "10.1.1."] and "10.1.15." in excluded
    assert "10.1.16." not in excluded and "fd00:" in excluded and "fdff:" in excluded
    assert len(excluded) == 1 + 16 + 256  # ::/1 would need an empty prefix: not exempted


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


def test_pages_for_browsers_run_in_trac_s_group_with_both_apps_places():
    conf = render(
        {
            "BZR_URL_PATH": "/code.bzr",
            "TRAC_BASE_URL": "https://example.org/trac",
            "BZR_ALLOW_WRITES": "false",
        }
    )
    assert re.search(
        r'^WSGIScriptAliasMatch "\^/code\\\.bzr/\(\?:\.\*/\)\?\$" \S+/wsgi/folders.wsgi$',
        conf,
        re.M,
    )
    opening = '<LocationMatch "^(?:/trac/?|/code\\.bzr/(?:.*/)?)$">'
    block = conf.split(opening, 1)[1].split("</LocationMatch>", 1)[0]
    # After the tree's <Location>, whose WSGIProcessGroup bzr it overrides.
    assert conf.index(opening) > conf.index("<Location /code.bzr/>")
    assert "WSGIProcessGroup trac\n" in block
    environ = dict(re.findall(r'SetEnv (\S+) "([^"]*)"', block))
    assert PagesEnviron.from_environ(environ) == PagesEnviron(
        trac_url="/trac",
        env_parent_dir="/var/lib/trac",
        bzr_url="/code.bzr",
        bzr_root="/srv/bzr",
        bzr_mode="read-only",
        anonymous_read="yes",
        base_url="https://example.org/trac",
        client_plugin_url="/client/trac_breezy_streaming.py",
        project_errors="/run/trac-breezy/server/project-errors.json",
    )
    assert "Options Indexes" not in conf  # Apache lists no folder of the tree


def test_folders_are_pages_and_everything_else_below_them_plain_files():
    conf = render({})
    files = re.search(r'^AliasMatch "(\^/bzr/[^"]+)"', conf, re.M).group(1)
    pages = re.search(r'^WSGIScriptAliasMatch "([^"]+)" \S+/folders.wsgi$', conf, re.M).group(1)
    smart = re.search(r'^WSGIScriptAliasMatch "([^"]+)" \S+/bzr.wsgi$', conf, re.M).group(1)
    routes = {"files": files, "pages": pages, "smart": smart}
    expected = {
        "/bzr/": "pages",
        "/bzr/code/": "pages",
        "/bzr/code/trunk/.bzr/": "pages",  # which answers 404
        "/bzr/code": "files",  # mod_dir redirects it to code/
        "/bzr/code/trunk/.bzr/branch-format": "files",
        "/bzr/code/trunk/.bzr/repository/pack-names": "files",
        "/bzr/code/trunk/.bzr/smart": "smart",
        "/bzr/.bzr/smart": "smart",
    }
    for url, route in expected.items():
        matched = [name for name, regex in routes.items() if re.match(regex, url)]
        assert matched == [route], (url, matched)


def test_the_healthcheck_is_left_out_of_the_access_log():
    conf = render({})
    assert "SetEnvIfExpr \"%{HTTP:X-Trac-Breezy-Health} == '0123abcd'\" tb_healthcheck\n" in conf
    assert re.search(r"^CustomLog \S+ combined_time env=!tb_healthcheck$", conf, re.M)


# -- HTTPS (docs/https.md) ----------------------------------------------------------------

TLS_ENV = {
    "TLS_CERT_FILE": "/run/secrets/trac-breezy/tls.crt",
    "TLS_KEY_FILE": "/run/secrets/trac-breezy/tls.key",
}


def block(conf: str, start: str, end: str) -> str:
    return conf.split(start, 1)[1].split(end, 1)[0]


def test_https_and_proxy_headers_are_off_by_default():
    conf = render({})
    for absent in ("ssl_module", "SSLEngine", "Listen 8443", "VirtualHost", "remoteip", "HTTPS=on"):
        assert absent not in conf, absent
    assert "RewriteEngine" not in conf and "Strict-Transport-Security" not in conf
    assert "QS_ClientIpFromHeader" not in conf


def test_https_is_a_second_port_that_only_adds_tls_to_the_same_routes():
    conf = render(TLS_ENV)
    assert "Listen 8080\n" in conf and "Listen 8443 https\n" in conf
    assert "LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so" in conf
    # The routes stay the main server's, once, which the virtual host inherits.
    vhost = block(conf, "<VirtualHost *:8443>", "</VirtualHost>")
    assert conf.count("WSGIScriptAlias ") == 1 and conf.count("<Location ") == 2
    for route in ("Location", "Alias", "WSGI", "Directory", "Require"):
        assert route not in vhost, route
    assert "SSLEngine on" in vhost
    # Apache reads root's copies, never the mounted files.
    assert 'SSLCertificateFile "/run/trac-breezy/tls-cert.pem"' in vhost
    assert 'SSLCertificateKeyFile "/run/trac-breezy/tls-key.pem"' in vhost
    assert "/run/secrets" not in conf
    # Mozilla's intermediate profile.
    assert "\nSSLProtocol -all +TLSv1.2 +TLSv1.3\n" in conf
    assert "\nSSLCipherSuite ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" in conf
    ciphers = re.search(r"^SSLCipherSuite (\S+)$", conf, re.M)[1].split(":")
    assert all(c.startswith("ECDHE-") and ("GCM" in c or "CHACHA20" in c) for c in ciphers)
    assert "\nSSLHonorCipherOrder off\n" in conf and "\nSSLSessionTickets off\n" in conf
    assert 'Header always set Strict-Transport-Security "max-age=63072000"' in vhost
    assert "RequestReadTimeout handshake=10-20,MinRate=500" in vhost
    assert "shmcb:/run/trac-breezy/server/ssl-session-cache" in conf


def test_https_port_and_hsts_follow_their_settings():
    conf = render({**TLS_ENV, "TLS_PORT": "9443", "TLS_HSTS": "300"})
    assert "Listen 9443 https\n" in conf and "<VirtualHost *:9443>" in conf
    assert 'Strict-Transport-Security "max-age=300"' in conf
    assert "Strict-Transport-Security" not in render({**TLS_ENV, "TLS_HSTS": "off"})
    assert "Strict-Transport-Security" not in render({**TLS_ENV, "TLS_HSTS": "0"})


def test_proxy_headers_are_honoured_from_trusted_addresses_only():
    conf = render({"TRUSTED_PROXIES": "172.18.0.1, 10.0.0.0/8"})
    assert "LoadModule remoteip_module " in conf
    assert "\nRemoteIPHeader X-Forwarded-For\n" in conf
    assert "\nRemoteIPInternalProxy 172.18.0.1/32 10.0.0.0/8\n" in conf
    # The scheme, from the peer itself (CONN_REMOTE_ADDR, not the client's address).
    assert (
        "SetEnvIfExpr \"tolower(%{HTTP:X-Forwarded-Proto}) == 'https' && "
        "(%{CONN_REMOTE_ADDR} -ipmatch '172.18.0.1/32' || "
        "%{CONN_REMOTE_ADDR} -ipmatch '10.0.0.0/8')\" HTTPS=on\n"
    ) in conf
    # mod_qos counts failed logins under the client's address, when it counts at all.
    assert "\nQS_ClientIpFromHeader #USERAGENT_IP\n" in conf
    off = render({"TRUSTED_PROXIES": "172.18.0.1", "LOGIN_FAILURE_LIMIT": "0"})
    # Expensive pages are counted per client too, with or without a login limit.
    assert "RemoteIPInternalProxy 172.18.0.1/32" in off and "QS_ClientIpFromHeader" in off
    assert "QS_ClientIpFromHeader" not in render({})


def test_plain_http_is_redirected_only_on_the_plain_port_when_asked():
    conf = render({**TLS_ENV, "TLS_REDIRECT_HTTP": "https://trac.example.org"})
    rewrite = conf.split("\nRewriteEngine On\n", 1)[1]
    assert "RewriteCond %{ENV:HTTPS} !=on\n" in rewrite
    assert "%{CONN_REMOTE_ADDR} -ipmatch '127.0.0.0/8'" in rewrite  # the healthcheck
    assert "RewriteRule ^ https://trac.example.org%{REQUEST_URI} [R=301,L]" in rewrite
    # Server-wide rules of the main server, which the HTTPS host does not inherit.
    assert "VirtualHost" not in rewrite and "\nRewriteOptions" not in conf
    assert "RewriteEngine" not in render(TLS_ENV)


def test_the_tls_host_carries_the_certificate_s_name_when_it_has_one():
    context = apache_config.template_context(settings.load(TLS_ENV), health_token="0123abcd")
    conf = apache_config.render(context, template_dir=ROOT / "apache")
    assert "ServerName" not in block(conf, "<VirtualHost *:8443>", "</VirtualHost>")
    context["tls_server_name"] = "trac.example.org"
    conf = apache_config.render(context, template_dir=ROOT / "apache")
    vhost = block(conf, "<VirtualHost *:8443>", "</VirtualHost>")
    assert "\n    ServerName trac.example.org\n" in vhost
    # Links still follow each request's Host.
    assert "\nServerName localhost\n" in conf and "\nUseCanonicalName Off\n" in conf


def test_with_access_rules_plain_files_go_through_the_rules():
    ruled = render({"AUTHZ_FILE": "/run/secrets/trac-breezy/authz"})
    plain = render({})
    files_route = '/(?!(?:.*/)?\\.bzr/smart$)(.*[^/])$"'
    assert f'AliasMatch "^/bzr{files_route} "/srv/bzr/$1"' in plain
    assert "tree-files.wsgi" not in plain
    assert f'WSGIScriptAliasMatch "^/bzr{files_route} ' in ruled
    assert "tree-files.wsgi" in ruled and '"/srv/bzr/$1"' not in ruled
    # Allowed files come back to Apache by an internal redirect, to an Alias
    # that only such redirects reach.
    internal = ruled.split("\nAlias /.tree-files ", 1)[1].split("</Location>")[0]
    assert internal.startswith('"/srv/bzr"\n<Location /.tree-files>')
    assert "Require env REDIRECT_TB_TREE_FILE_ALLOWED\n" in internal
    assert 'Content-Security-Policy "sandbox"' in internal
    assert "/.tree-files" not in plain


# -- the client plugin's hash (issue 19, finding 7) ---------------------------------------------

PLUGIN = ROOT / "trac_breezy" / "brz_plugin" / "trac_breezy_streaming.py"


def readme_install_command() -> str:
    """The command that installs the client plugin (docs/push.md, "Fast pushes")."""
    page = (ROOT / "docs" / "push.md").read_text()
    section = page.split("## Fast pushes: the client plugin", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_readme_publishes_the_client_plugin_s_sha256():
    """Change the plugin, and the published hash (and its command) must follow."""
    published = re.findall(r"\b[0-9a-f]{64}\b", readme_install_command())
    assert published == [hashlib.sha256(PLUGIN.read_bytes()).hexdigest()]


def test_the_client_plugin_is_sent_with_its_digest():
    conf = render({})
    digest = base64.b64encode(hashlib.sha256(PLUGIN.read_bytes()).digest()).decode()
    block = conf.split('<Files "trac_breezy_streaming.py">', 1)[1].split("</Files>", 1)[0]
    assert f'Header set Repr-Digest "sha-256=:{digest}:"' in block


def test_anonymous_slow_readers_are_cut_off():
    conf = render({})
    assert "\nQS_SrvMinDataRate 1000\nQS_SrvSampleRate 5\n" in conf
    # Users are not timed on the smart server only, where sent credentials are
    # always checked (a made-up Authorization must not lift the rule).
    bzr = conf.split("\n<Location /bzr/>\n", 1)[1].split("</Location>")[0]
    assert "\n    QS_SrvMinDataRateOffEvent +TB_CREDENTIALS_SENT\n" in bzr
    assert "\nQS_SrvMinDataRateOffEvent" not in conf  # not server-wide
    assert conf.index('SetEnvIf Authorization "." TB_CREDENTIALS_SENT') < conf.index(
        "    QS_SrvMinDataRateOffEvent"
    )


def test_expensive_trac_pages_are_limited_or_need_a_login():
    limited = render({})
    assert "\nQS_CondClientEventLimitCount 60 60 TB_EXPENSIVE_ANONYMOUS expensive\n" in limited
    flagged = next(line for line in limited.splitlines() if "TB_EXPENSIVE_ANONYMOUS=1" in line)
    # Matched on the request as sent: the path decoded, its slashes spelled loosely.
    project = "unescape(%{REQUEST_URI}) =~ m#^/+trac/+[^/]+/"
    assert flagged.startswith(
        f'SetEnvIfExpr "({project}(?:.*/)?(?:log|changeset|diff|export)(?:/|$)# || '
        f"({project}(?:.*/)?timeline/*$# && -n %{{QUERY_STRING}}) || "
    )
    assert "unescape(%{QUERY_STRING}) =~ m#(?:^|&)(?:annotate=|rev=|format=zip(?:&|$))#" in flagged
    # A POST to a source view carries its fields in the body, where Trac reads them too.
    assert "(!(%{REQUEST_METHOD} in {'GET', 'HEAD'}) && " in flagged
    assert flagged.endswith(
        '&& -z %{HTTP:Authorization}" TB_EXPENSIVE_ANONYMOUS=1 QS_Cond=expensive'
    )
    assert 'Alias /robots.txt "/usr/share/trac-breezy/robots.txt"' in limited
    # Credentials sent for them are checked, or a made-up one would lift the limit.
    checked = limited.split('<LocationMatch "^/+trac/+[^/]+/">\n    <If "', 1)[1].split("</If>")[0]
    assert '&& -n %{HTTP:Authorization}">' in checked and "Require valid-user" in checked
    login = render({"TRAC_EXPENSIVE_PAGES": "login"})
    assert "QS_CondClientEventLimitCount" not in login
    guarded = login.split('<LocationMatch "^/+trac/+[^/]+/">\n    <If "', 1)[1].split("</If>")[0]
    assert "AuthType Basic" in guarded and "Require valid-user" in guarded
    opened = render({"TRAC_EXPENSIVE_PAGES": "open"})
    assert "TB_EXPENSIVE_ANONYMOUS" not in opened and "/robots.txt" in opened
    robots = (ROOT / "rootfs/usr/share/trac-breezy/robots.txt").read_text()
    assert "Disallow: /*/log/\n" in robots and "Disallow: /*annotate=\n" in robots
