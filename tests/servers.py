"""Servers the tests and the benchmarks start on loopback, shared by both.

`brz serve` is Breezy's own smart server (bzr://), the reference our
bzr+http:// server is compared with, for behaviour (tests/test_e2e_parity.py)
and for speed (bench/bzr_bench.py). The benchmarks import this module from
tests/ rather than keep copies.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BRZ = str(Path(sys.executable).with_name("brz"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"the server on port {port} did not start") from None
            time.sleep(0.1)


@dataclass(frozen=True)
class Served:
    url: str  # bzr://127.0.0.1:PORT
    pid: int


@contextmanager
def brz_serve(root: Path, env: dict[str, str]) -> Iterator[Served]:
    """`brz serve --allow-writes` on `root`, running until the block ends."""
    port = free_port()
    server = subprocess.Popen(
        [
            BRZ,
            "serve",
            "--allow-writes",
            f"--directory={root}",
            "--listen=127.0.0.1",
            f"--port={port}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server)
        yield Served(f"bzr://127.0.0.1:{port}", server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
