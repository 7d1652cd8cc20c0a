"""HTTPS, both ways (docs/https.md), against the real image.

In the container's Apache: the test makes its own CA and a certificate for
127.0.0.1, mounts them as compose.yaml mounts secrets, and checks the
handshake (TLS 1.2 and 1.3 only, strong ciphers only), HSTS, Trac's https://
links, plain HTTP sent over, failed logins over HTTPS counted, and a real
`brz push` over bzr+https:// that trusts the test's CA (and fails without it).

Behind a reverse proxy: requests from the host reach the container from the
Docker network's gateway, which the stack trusts (TRUSTED_PROXIES); requests
made inside the container come from 127.0.0.1, which it does not. Trusted
headers give Trac https:// links and mod_qos the client's own address;
untrusted ones change nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import http.server
import json
import os
import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import running_stack
from stack import ADMIN, Brz, Stack, free_port, run

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SECRETS = "/run/secrets/trac-breezy"
PROJECT = "web"
LOGIN_LIMIT = 3
# mod_qos counts a failed login when it logs the request, after the answer
# went out: a quick client's next request may come before the count does.
TRIES = LOGIN_LIMIT + 2


def locked_out_after_the_limit(statuses: list[int]) -> bool:
    """Every failure up to the limit refused as wrong (401), then 429."""
    return statuses[:LOGIN_LIMIT] == [401] * LOGIN_LIMIT and statuses[-1] == 429


# What Docker's bridge networks are made of: the gateway the host's requests come from.
DOCKER_NETWORKS = "172.16.0.0/12,192.168.0.0/16,10.0.0.0/8"
# Where the proxied stack sends plain HTTP (the proxy's public address).
PUBLIC_ORIGIN = "https://trac.example.org"
STRONG_CIPHER_PREFIXES = ("TLS_AES_", "TLS_CHACHA20_", "ECDHE-")


@dataclass(frozen=True)
class TestCA:
    __test__ = False  # not a test class

    ca: Path
    secrets: Path  # tls.crt and tls.key (root's, 0600), as a user mounts them

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A throw-away CA and a certificate it signed for 127.0.0.1 and localhost."""
    directory = tmp_path_factory.mktemp("ca")
    secrets = directory / "secrets"
    secrets.mkdir()
    ca, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    cert, key, csr = secrets / "tls.crt", secrets / "tls.key", directory / "server.csr"
    (directory / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:trac-breezy.test,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-subj", "/CN=trac-breezy HTTPS test CA", "-keyout", str(ca_key), "-out", str(ca),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
    )  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(key), "-out", str(csr))  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "30", "-extfile", str(directory / "ext.cnf"),
            "-out", str(cert))  # fmt: skip
    cert.chmod(0o644)
    key.chmod(0o600)  # root reads it at start; Apache gets a copy
    return TestCA(ca, secrets)


def https_port(stack: Stack) -> int:
    return int(stack.env["HTTPS_PORT"])


@pytest.fixture(scope="module")
def tls_stack(image: str, test_ca: TestCA) -> Iterator[Stack]:
    port = free_port()
    env = {
        "ADMIN_USER": ADMIN[0],
        "ADMIN_PASSWORD": ADMIN[1],
        "TRAC_PROJECTS": PROJECT,
        "SECRETS_DIR": str(test_ca.secrets),
        "TLS_CERT_FILE": f"{SECRETS}/tls.crt",
        "TLS_KEY_FILE": f"{SECRETS}/tls.key",
        "HTTPS_PORT": str(port),
        "TLS_REDIRECT_HTTP": f"https://127.0.0.1:{port}",
        "LOGIN_FAILURE_LIMIT": str(LOGIN_LIMIT),
        "LOGIN_LOCKOUT_SECONDS": "60",
    }
    with running_stack(image, "https", **env) as stack:
        yield stack


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: str


def fetch(
    url_port: int,
    path: str,
    *,
    context: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request to 127.0.0.1 (https with a context), redirects not followed."""
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=60)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", url_port, timeout=60, context=context)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def handshake(port: int, context: ssl.SSLContext) -> tuple[str, str]:
    """(TLS version, cipher) negotiated with 127.0.0.1:port."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
    try:
        conn.connect()
        return conn.sock.version(), conn.sock.cipher()[0]
    finally:
        conn.close()


# -- TLS in the container's Apache ----------------------------------------------------------


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_the_handshake_offers_tls_1_2_and_1_3_with_strong_ciphers_only(
    tls_stack: Stack, test_ca: TestCA
):
    port = https_port(tls_stack)
    version, cipher = handshake(port, test_ca.client_context())
    assert version == "TLSv1.3" and cipher.startswith(STRONG_CIPHER_PREFIXES), (version, cipher)
    at_most_1_2 = test_ca.client_context()
    at_most_1_2.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher = handshake(port, at_most_1_2)
    assert version == "TLSv1.2" and cipher.startswith("ECDHE-"), (version, cipher)
    assert "GCM" in cipher or "CHACHA20" in cipher, cipher
    # A client that knows no better than TLS 1.1 is refused by the server.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(cafile=str(test_ca.ca))
    old.set_ciphers("ALL:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as refused:
        handshake(port, old)
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value  # the server's
    # Nor is a TLS 1.2 cipher without forward secrecy or without AEAD accepted.
    for weak in ("AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256"):
        context = test_ca.client_context()
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(weak)
        with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
            handshake(port, context)


def test_trac_over_https_builds_https_links_and_sends_hsts(tls_stack: Stack, test_ca: TestCA):
    port = https_port(tls_stack)
    origin = f"https://127.0.0.1:{port}"
    answer = fetch(port, f"/trac/{PROJECT}/search/opensearch", context=test_ca.client_context())
    assert answer.status == 200, answer.body[:500]
    assert f'template="{origin}/trac/{PROJECT}/search?q=' in answer.body, answer.body
    assert answer.headers["Strict-Transport-Security"] == "max-age=63072000"
    # Trac's own redirect after a login is absolute, and https.
    login = fetch(
        port, f"/trac/{PROJECT}/login", context=test_ca.client_context(), headers=basic(*ADMIN)
    )
    assert login.status in (302, 303) and login.headers["Location"].startswith(origin + "/")
    # The TLS host has the certificate's name: Apache does not warn that it is not
    # for "localhost" (AH01909).
    conf = tls_stack.exec("cat", "/run/trac-breezy/httpd.conf").stdout
    assert "\n    ServerName trac-breezy.test\n" in conf
    assert "AH01909" not in tls_stack.compose("logs", "--no-color", "web").stdout
    # Apache's answers carry HSTS too, and Trac's static files come over HTTPS as well.
    css = fetch(
        port, f"/trac/{PROJECT}/chrome/common/css/trac.css", context=test_ca.client_context()
    )
    assert css.status == 200 and css.headers["Strict-Transport-Security"]


# -- the client plugin (issue 19, finding 7) ----------------------------------------------------

PLUGIN = ROOT / "trac_breezy" / "brz_plugin" / "trac_breezy_streaming.py"


def test_the_client_plugin_comes_over_https_with_its_digest(tls_stack: Stack, test_ca: TestCA):
    """It came over plain http only, as the README said: anyone on the path could swap it."""
    answer = fetch(
        https_port(tls_stack), "/client/trac_breezy_streaming.py", context=test_ca.client_context()
    )
    assert answer.status == 200 and answer.body.encode() == PLUGIN.read_bytes()
    digest = base64.b64encode(hashlib.sha256(answer.body.encode()).digest()).decode()
    assert answer.headers["Repr-Digest"] == f"sha-256=:{digest}:"


def install(command: str, url: str, home: Path, ca: Path) -> subprocess.CompletedProcess:
    """The install command of docs/push.md (without its last check), fetching `url`."""
    script = re.sub(r"(?m)^url=\S+", f"url={url}", command.split("\nbrz plugins", 1)[0])
    env = {**os.environ, "HOME": str(home), "CURL_CA_BUNDLE": str(ca)}
    return subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@contextmanager
def swapping_server(directory: Path) -> Iterator[str]:
    """Someone on the path: serves `directory`'s files over plain http."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_readme_s_install_command_installs_the_plugin_only_when_it_matches(
    tls_stack: Stack, test_ca: TestCA, tmp_path: Path
):
    """The command installed whatever came: a swapped file ran in the user's brz."""
    page = (ROOT / "docs" / "push.md").read_text()
    section = page.split("## Fast pushes: the client plugin", 1)[1]
    command = section.split("```sh\n", 1)[1].split("```", 1)[0]
    installed = tmp_path / ".config" / "breezy" / "plugins" / "trac_breezy_streaming.py"
    url = f"https://127.0.0.1:{https_port(tls_stack)}/client/trac_breezy_streaming.py"
    done = install(command, url, tmp_path, test_ca.ca)
    assert done.returncode == 0, done.stderr
    assert installed.read_bytes() == PLUGIN.read_bytes()
    plugins = run(
        [str(ROOT / ".venv" / "bin" / "brz"), "plugins"], env={**os.environ, "HOME": str(tmp_path)}
    )
    assert "trac_breezy_streaming" in plugins.stdout
    # The same command, given a swapped file: refused, the good one left in place.
    swapped = tmp_path / "served"
    swapped.mkdir()
    (swapped / "trac_breezy_streaming.py").write_bytes(
        PLUGIN.read_bytes() + b"\nimport os; os.system('id')\n"
    )
    with swapping_server(swapped) as origin:
        refused = install(command, f"{origin}/trac_breezy_streaming.py", tmp_path, test_ca.ca)
    assert refused.returncode != 0 and "FAILED" in refused.stdout + refused.stderr
    assert installed.read_bytes() == PLUGIN.read_bytes()


def test_plain_http_is_sent_to_https_before_any_password_is_asked(tls_stack: Stack):
    port = https_port(tls_stack)
    answer = fetch(tls_stack.port, f"/trac/{PROJECT}/login?x=1")
    assert answer.status == 301  # not 401: no password prompt over plain HTTP
    assert answer.headers["Location"] == f"https://127.0.0.1:{port}/trac/{PROJECT}/login?x=1"
    assert "Strict-Transport-Security" not in answer.headers  # HSTS only over HTTPS
    # The container itself still gets plain HTTP (the healthcheck does).
    inside = tls_stack.exec(
        "python", "-c",
        f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/trac/{PROJECT}/').status)",
    )  # fmt: skip
    assert inside.stdout.strip() == "200"


def brz_for_https(home: Path, port: int, ca: Path | None) -> Brz:
    """The brz client, trusting `ca` (in breezy.conf), with the admin's password for
    https on `port` (authentication.conf), as a user would set them up."""
    client = Brz(home)
    client.config_dir.mkdir(parents=True, exist_ok=True)
    if ca is not None:
        (client.config_dir / "breezy.conf").write_text(f"[DEFAULT]\nssl.ca_certs = {ca}\n")
    auth = client.config_dir / "authentication.conf"
    auth.write_text(
        f"[trac-breezy]\nscheme=https\nhost=127.0.0.1\nport={port}\n"
        f"user={ADMIN[0]}\npassword={ADMIN[1]}\n"
    )
    auth.chmod(0o600)
    return client


def test_brz_pushes_and_branches_over_bzr_https(tls_stack: Stack, test_ca: TestCA, tmp_path: Path):
    port = https_port(tls_stack)
    url = f"bzr+https://127.0.0.1:{port}/bzr/secure"
    brz = brz_for_https(tmp_path / "home", port, test_ca.ca)
    work = tmp_path / "work"
    brz("init", str(work))
    (work / "notes.txt").write_text("sent over TLS\n")
    brz("add", cwd=work)
    brz("commit", "-m", "first over https", cwd=work)
    pushed = brz("push", url, cwd=work)
    assert "Created new branch" in pushed.stderr, pushed.stderr
    brz("branch", url, str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "notes.txt").read_text() == "sent over TLS\n"
    assert brz.revno(url) == 1
    # Without the test's CA the client refuses the server: the certificate is checked.
    stranger = brz_for_https(tmp_path / "stranger", port, None)
    refused = stranger("branch", url, str(tmp_path / "no"), check=False)
    assert refused.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr, (
        refused.stderr[-2000:]
    )


_WRONG_LOGINS_OVER_HTTPS = """
import base64, ssl, sys, urllib.error, urllib.request
context = ssl._create_unverified_context()
auth = "Basic " + base64.b64encode(b"admin:guess").decode()
for _ in range(int(sys.argv[1])):
    request = urllib.request.Request("https://127.0.0.1:8443/trac/web/login",
                                     headers={"Authorization": auth})
    try:
        urllib.request.urlopen(request, timeout=30, context=context)
        print(200)
    except urllib.error.HTTPError as error:
        print(error.code)
"""


def test_failed_logins_over_https_count_too(tls_stack: Stack):
    """Last in this module: it locks 127.0.0.1 (the container itself) out."""
    ran = tls_stack.exec("python", "-c", _WRONG_LOGINS_OVER_HTTPS, str(TRIES))
    assert locked_out_after_the_limit([int(s) for s in ran.stdout.split()]), ran.stdout


def test_a_key_that_is_not_the_certificate_s_stops_the_container(
    image: str, test_ca: TestCA, tmp_path: Path
):
    other = tmp_path / "other.key"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(other))
    result = run(
        [
            "docker", "run", "--rm",
            "-v", f"{test_ca.secrets}:{SECRETS}:ro", "-v", f"{other}:/run/secrets/other.key:ro",
            "-e", f"TLS_CERT_FILE={SECRETS}/tls.crt", "-e", "TLS_KEY_FILE=/run/secrets/other.key",
            image,
        ],
        check=False,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr  # EXIT_CONFIG
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [
        "trac-breezy: error: TLS_KEY_FILE=/run/secrets/other.key is not the key of the "
        f"certificate in TLS_CERT_FILE={SECRETS}/tls.crt; mount the key the certificate "
        "was issued for"
    ], result.stderr


# -- behind a reverse proxy -----------------------------------------------------------------


@pytest.fixture(scope="module")
def proxied_stack(image: str) -> Iterator[Stack]:
    env = {
        "ADMIN_USER": ADMIN[0],
        "ADMIN_PASSWORD": ADMIN[1],
        "TRAC_PROJECTS": PROJECT,
        "TRUSTED_PROXIES": DOCKER_NETWORKS,
        "TLS_REDIRECT_HTTP": PUBLIC_ORIGIN,
        "LOGIN_FAILURE_LIMIT": str(LOGIN_LIMIT),
        "LOGIN_LOCKOUT_SECONDS": "60",
    }
    with running_stack(image, "proxied", **env) as stack:
        yield stack


# What the proxy adds to a request that came to it over HTTPS.
FROM_HTTPS = {"X-Forwarded-Proto": "https"}


def opensearch_origin(body: str) -> str:
    return body.split('template="', 1)[1].split(f"/trac/{PROJECT}/search", 1)[0]


_FROM_INSIDE = """
import json, sys, urllib.error, urllib.request
request = urllib.request.Request("http://127.0.0.1:8080" + sys.argv[1],
                                 headers=json.loads(sys.argv[2]))
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode(errors="replace"))
"""


def from_inside(stack: Stack, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """A request from the container itself (127.0.0.1, not a trusted proxy)."""
    out = stack.exec("python", "-c", _FROM_INSIDE, path, json.dumps(headers)).stdout
    status, _, body = out.partition(" ")
    return int(status), body


def test_a_trusted_proxy_s_https_gives_https_links(proxied_stack: Stack):
    port = proxied_stack.port
    path = f"/trac/{PROJECT}/search/opensearch"
    proxied = fetch(port, path, headers=FROM_HTTPS)
    assert proxied.status == 200
    assert opensearch_origin(proxied.body) == f"https://127.0.0.1:{port}"
    login = fetch(port, f"/trac/{PROJECT}/login", headers={**FROM_HTTPS, **basic(*ADMIN)})
    assert login.headers["Location"].startswith(f"https://127.0.0.1:{port}/")
    # What the proxy says came over plain HTTP is sent to HTTPS (TLS_REDIRECT_HTTP).
    plain = fetch(port, path, headers={"X-Forwarded-Proto": "http"})
    assert (plain.status, plain.headers["Location"]) == (301, PUBLIC_ORIGIN + path)


def test_an_untrusted_client_s_proxy_headers_change_nothing(proxied_stack: Stack):
    status, body = from_inside(proxied_stack, f"/trac/{PROJECT}/search/opensearch", FROM_HTTPS)
    assert status == 200 and opensearch_origin(body) == "http://127.0.0.1:8080"


def test_failed_logins_count_per_client_behind_the_proxy(proxied_stack: Stack):
    port = proxied_stack.port
    path = f"/trac/{PROJECT}/login"

    def login(client: str, password: str) -> int:
        headers = {**FROM_HTTPS, "X-Forwarded-For": client, **basic(ADMIN[0], password)}
        return fetch(port, path, headers=headers).status

    statuses = [login("203.0.113.7", "guess") for _ in range(TRIES)]
    assert locked_out_after_the_limit(statuses), statuses
    # Another client behind the same proxy is not locked out, nor the proxy itself.
    assert login("203.0.113.8", "guess") == 401
    assert login("203.0.113.8", ADMIN[1]) in (302, 303)
    assert fetch(port, path, headers={**FROM_HTTPS, **basic(*ADMIN)}).status in (302, 303)
    # The access log names the client, not the proxy.
    logs = proxied_stack.compose("logs", "--no-color", "web").stdout
    assert re.search(r"^\S+\s+\| 203\.0\.113\.7 - admin \[", logs, re.M), logs[-3000:]
    # A client that is no trusted proxy cannot dodge the count with the header.
    seen = [
        from_inside(proxied_stack, path, {"X-Forwarded-For": f"198.51.100.{n}",
                                          **basic(ADMIN[0], "guess")})[0]
        for n in range(TRIES)
    ]  # fmt: skip
    assert locked_out_after_the_limit(seen), seen
