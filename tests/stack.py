"""Drive the real stack for end-to-end tests: Docker, Compose and the brz client.

The tests use whichever Compose the host has (the `docker compose` plugin, else
`docker-compose` v1) and fail, never skip, when no Docker engine answers.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from servers import BRZ, free_port

__all__ = ["BRZ", "free_port"]  # re-exported for the tests that import them from here

ROOT = Path(__file__).resolve().parent.parent


def run(
    args: list[str], *, check: bool = True, timeout: float = 600, **kwargs
) -> subprocess.CompletedProcess:
    """Run a command, capture its output, and fail the test with it on error."""
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"stdout: {result.stdout[-4000:]}\nstderr: {result.stderr[-4000:]}"
        )
    return result


def smart_request(verb: bytes, *args: bytes, body: bytes | None = None) -> bytes:
    """A complete protocol-3 smart request, as brz sends it (with `body`, if given)."""
    from fastbencode import bencode

    headers = bencode({b"Software version": b"3.3.23"})
    structure = bencode([verb, *args])
    message = (
        b"bzr message 3 (bzr 1.6)\n"
        + struct.pack("!L", len(headers))
        + headers
        + b"s"
        + struct.pack("!L", len(structure))
        + structure
    )
    if body is not None:
        message += b"b" + struct.pack("!L", len(body)) + body
    return message + b"e"


def require_docker() -> None:
    if shutil.which("docker") is None:
        pytest.fail("the docker client is not installed; run scripts/test, which installs it")
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail(
            "no Docker engine answers (`docker info` failed); run scripts/test, which starts "
            f"Debian's engine as root, or start Docker: {probe.stderr.strip()[:300]}"
        )


def compose_command() -> list[str]:
    if (
        subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed; run scripts/test")
    raise AssertionError  # not reached


@dataclass
class Stack:
    """One Compose project of compose.yaml, on its own port and volumes."""

    project: str
    port: int
    image: str
    env_overrides: dict[str, str] = field(default_factory=dict)
    # compose.yaml publishes the HTTPS port too (README, HTTPS): each stack its own.
    https_port: int = field(default_factory=free_port)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.project,
            "HTTP_PORT": str(self.port),
            "HTTPS_PORT": str(self.https_port),
            "TRAC_BREEZY_IMAGE": self.image,
            **self.env_overrides,
        }

    def compose(
        self, *args: str, check: bool = True, timeout: float = 600, input: str | None = None
    ) -> subprocess.CompletedProcess:
        return run(
            [*compose_command(), "-f", str(ROOT / "compose.yaml"), *args],
            check=check,
            timeout=timeout,
            env=self.env,
            cwd=ROOT,
            input=input,
        )

    def exec(
        self, *args: str, user: str | None = None, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess:
        as_user = ["--user", user] if user else []
        return self.compose("exec", "-T", *as_user, "web", *args, check=check, input=input)

    def container_id(self) -> str:
        return self.compose("ps", "-q", "web").stdout.strip()

    def inspect(self) -> dict:
        return json.loads(run(["docker", "inspect", self.container_id()]).stdout)[0]

    def volume(self, name: str) -> str:
        return f"{self.project}_{name}"

    def up(self, timeout: float = 180) -> float:
        """`up -d`, then wait for the healthcheck; returns seconds to healthy."""
        started = time.monotonic()
        self.compose("up", "-d", "--no-build")
        self.wait_healthy(timeout)
        return time.monotonic() - started

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        status = "?"
        while time.monotonic() < deadline:
            state = self.inspect()["State"]
            status = state.get("Health", {}).get("Status", state["Status"])
            if status == "healthy":
                return
            if state["Status"] == "exited":
                break
            time.sleep(0.5)
        logs = self.compose("logs", "--no-color", "web", check=False).stdout
        pytest.fail(f"the container did not become healthy (last status {status}):\n{logs[-6000:]}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bzr_url(self, path: str, scheme: str = "bzr+http") -> str:
        prefix = self.env_overrides.get("BZR_URL_PATH") or "/bzr"
        return f"{scheme}://127.0.0.1:{self.port}{prefix}/{path}"

    def request(self, method: str, path: str, body: bytes | None = None) -> int:
        """The status of one request with any method (GET is `get`)."""
        request = urllib.request.Request(self.url(path), data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=60) as response:
                return (
                    response.status,
                    dict(response.headers),
                    response.read().decode("utf-8", "replace"),
                )
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode("utf-8", "replace")


ADMIN = ("admin", "correct horse")

_NEW_TICKET = (
    "import sys; from trac.env import open_environment; from trac.ticket.model import Ticket; "
    "t = Ticket(open_environment(sys.argv[1])); "
    "t.populate({'summary': sys.argv[2], 'reporter': 'tester', 'status': 'new'}); print(t.insert())"
)


def new_ticket(stack: Stack, env_path: str, summary: str) -> int:
    """Create a ticket with Trac's own model, inside the container; returns its id."""
    return int(stack.exec("python", "-c", _NEW_TICKET, env_path, summary, user="www-data").stdout)


def mounted_rule_file(base: Path, rules: str) -> tuple[dict[str, str], Path]:
    """A rule file in a secrets folder under `base`, as a user mounts one: the
    settings that mount it (SECRETS_DIR, AUTHZ_FILE) and the host file, to edit."""
    secrets = base / "secrets"
    secrets.mkdir()
    secrets.chmod(0o755)
    host_file = secrets / "authz"
    host_file.write_text(rules)
    host_file.chmod(0o644)
    return {"SECRETS_DIR": str(secrets), "AUTHZ_FILE": "/run/secrets/trac-breezy/authz"}, host_file


def write_credentials(brz: Brz, port: int, user: str, password: str) -> None:
    """authentication.conf for the server on `port`, as a user would write it."""
    brz.config_dir.mkdir(parents=True, exist_ok=True)
    conf = brz.config_dir / "authentication.conf"
    conf.write_text(
        f"[trac-breezy]\nscheme=http\nhost=127.0.0.1\nport={port}\n"
        f"user={user}\npassword={password}\n"
    )
    conf.chmod(0o600)


def side_container(
    image: str, env: dict[str, str], volumes: dict[str, str], *extra: str
) -> tuple[str, Stack]:
    """`docker run -d` of the image beside a stack (its own port); remove it with docker rm."""
    port = free_port()
    name = f"tbtest-side-{port}"
    args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    args += [a for source, target in volumes.items() for a in ("-v", f"{source}:{target}")]
    run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "-p",
            f"127.0.0.1:{port}:8080",
            *args,
            *extra,
            image,
        ]
    )
    return name, Stack(project="unused", port=port, image=image)


class Brz:
    """The real `brz` client, isolated from the user's configuration."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "HOME": str(home),
            "BRZ_EMAIL": "Test User <test@example.org>",
            "BRZ_PLUGIN_PATH": "-site:-user",
            "BRZ_LOG": str(home / "brz.log"),
        }

    @property
    def config_dir(self) -> Path:
        """Where this client reads breezy.conf and authentication.conf."""
        return Path(self.env["HOME"]) / ".config" / "breezy"

    brz = BRZ

    def __call__(
        self, *args: str, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        return run(
            [BRZ, *args], check=check, timeout=300, env=self.env, cwd=cwd, stdin=subprocess.DEVNULL
        )

    def revno(self, location: str | Path) -> int:
        return int(self("revno", str(location)).stdout.strip())
