"""Benchmark: Trac in our container against tracd (Trac's own server), same environment.

Both run from the same image on the same Trac environment (one volume), side
by side on this machine: our container (Apache, mod_wsgi, Trac's static files
from Apache) and a second container running `tracd` (Trac's own server,
started by this script). wrk (Debian package `wrk`) drives each with the same
requests, at each concurrency, for --duration seconds:

* **wiki HTML**: `/wiki/WikiStart` alone;
* **full page**: the wiki page's HTML and every Trac asset it references,
  in turn (page loads/s = requests/s / number of URLs in a page);
* **ticket query**: `/query` over 50 tickets.

With --tune it first measures wiki HTML at concurrency 8 for several
WSGI_PROCESSES x WSGI_THREADS, to choose the defaults. Prints Markdown tables.

    python bench/trac_bench.py --image trac-breezy:latest
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import free_port

NEW_TICKETS = (
    "import sys; from trac.env import open_environment; from trac.ticket.model import Ticket\n"
    "env = open_environment(sys.argv[1])\n"
    "for i in range(50):\n"
    "    t = Ticket(env); t.populate({'summary': f'ticket {i}', 'reporter': 'bench',\n"
    "        'status': 'new',\n"
    "        'description': 'Some text, WikiFormatting and a [wiki:WikiStart link].'})\n"
    "    t.insert()\n"
)
WRK_SCRIPT = """
paths = {%s}
i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def wait_for(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer")
        time.sleep(0.3)


def run_container(role: str, container_port: int, volume: str, *args: str) -> tuple[str, int]:
    """`docker run` one server on the bench volume; returns its name and published port."""
    port = free_port()
    name = f"trac-bench-{role}-{port}"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "-p",
        f"127.0.0.1:{port}:{container_port}",
        "-v",
        f"{volume}:/var/lib/trac",
        *args,
    )
    return name, port


def start_ours(image: str, volume: str, processes: int, threads: int) -> tuple[str, str]:
    name, port = run_container(
        "ours",
        8080,
        volume,
        "-e",
        "TRAC_PROJECTS=bench",
        "-e",
        f"WSGI_PROCESSES={processes}",
        "-e",
        f"WSGI_THREADS={threads}",
        image,
    )
    base = f"http://127.0.0.1:{port}/trac/bench"
    wait_for(base + "/wiki/WikiStart")
    return name, base


def start_tracd(image: str, volume: str) -> tuple[str, str]:
    name, port = run_container(
        "tracd",
        8000,
        volume,
        "--user",
        "www-data",
        "--entrypoint",
        "tracd",
        image,
        "--port",
        "8000",
        "/var/lib/trac/bench",
    )
    base = f"http://127.0.0.1:{port}/bench"
    wait_for(base + "/wiki/WikiStart")
    return name, base


def page_urls(base: str) -> list[str]:
    """The wiki page and every Trac asset it references (paths only)."""
    with urllib.request.urlopen(base + "/wiki/WikiStart") as response:
        html = response.read().decode()
    prefix = urllib.request.urlparse(base).path
    assets = re.findall(rf'(?:href|src)="({re.escape(prefix)}/chrome/[^"]+)"', html)
    return [prefix + "/wiki/WikiStart", *dict.fromkeys(assets)]


def wrk(base: str, paths: list[str], connections: int, seconds: int) -> dict[str, float]:
    host = base.split("/", 3)[:3]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ", ".join(f'"{p}"' for p in paths))
    out = subprocess.run(
        [
            "wrk",
            "--latency",
            "--timeout",
            "30s",
            "-t",
            str(min(connections, 4)),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "-s",
            script.name,
            "/".join(host) + "/",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    Path(script.name).unlink()

    def ms(label: str) -> float:
        value = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        assert value, out
        return float(value[1]) * {"us": 0.001, "ms": 1, "s": 1000}[value[2]]

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        "p50": ms("50"),
        "p99": ms("99"),
        "errors": errors + (int(non2xx[1]) if non2xx else 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="trac-breezy:latest")
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=15)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    volume = f"trac-bench-{int(time.time())}"
    containers: list[str] = []
    try:
        name, ours = start_ours(args.image, volume, args.processes, args.threads)
        containers.append(name)
        docker("exec", "-u", "www-data", name, "python", "-c", NEW_TICKETS, "/var/lib/trac/bench")
        if args.tune:
            print("| WSGI_PROCESSES x WSGI_THREADS | wiki HTML req/s (c=8) | p99 (ms) |")
            print("|---|---|---|")
            for processes, threads in ((1, 15), (2, 4), (2, 8), (2, 15), (4, 4), (4, 8)):
                tuned, base = start_ours(args.image, volume, processes, threads)
                wrk(base, [urllib.request.urlparse(base).path + "/wiki/WikiStart"], 8, 3)
                result = wrk(
                    base, [urllib.request.urlparse(base).path + "/wiki/WikiStart"], 8, args.duration
                )
                docker("rm", "-f", tuned)
                print(f"| {processes} x {threads} | {result['rps']:.1f} | {result['p99']:.0f} |")
            print()
        tracd_name, tracd = start_tracd(args.image, volume)
        containers.append(tracd_name)

        workloads = {}
        for label, base in (("ours", ours), ("tracd", tracd)):
            prefix = urllib.request.urlparse(base).path
            workloads[label] = {
                "wiki HTML": [prefix + "/wiki/WikiStart"],
                "full page": page_urls(base),
                "ticket query": [prefix + "/query"],
            }
        page_size = len(workloads["ours"]["full page"])
        print(
            f"full page = the wiki page + {page_size - 1} assets; "
            f"{args.duration} s per cell, after a 3 s warm-up\n"
        )
        print(
            "| workload | concurrency | server | req/s | page loads/s | p50 (ms) | p99 (ms) | "
            "errors |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for workload in ("wiki HTML", "full page", "ticket query"):
            for connections in (int(c) for c in args.concurrency.split(",")):
                rates = {}
                for label, base in (("ours", ours), ("tracd", tracd)):
                    paths = workloads[label][workload]
                    wrk(base, paths, connections, 3)
                    r = wrk(base, paths, connections, args.duration)
                    loads = r["rps"] / len(paths)
                    rates[label] = loads
                    print(
                        f"| {workload} | {connections} | {label} | {r['rps']:.1f} | {loads:.1f} | "
                        f"{r['p50']:.1f} | {r['p99']:.1f} | {r['errors']} |"
                    )
                print(
                    f"| {workload} | {connections} | **ratio** | | "
                    f"**{rates['ours'] / rates['tracd']:.2f}x** | | | |"
                )
    finally:
        for name in containers:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", volume], capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
