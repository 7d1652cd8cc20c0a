"""The runner that lets pushes in flight finish before Apache stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from trac_breezy.startup import apache_runner

# Stands in for `apache2 -DFOREGROUND`: exits 0 on a graceful stop (WINCH),
# and says when it got it.
SERVER = """
import signal, sys, time
def graceful(*_):
    print("graceful stop at", time.monotonic(), flush=True)
    sys.exit(0)
signal.signal(signal.SIGWINCH, graceful)
time.sleep(60)
sys.exit(3)
"""


def test_a_stop_waits_while_a_push_is_in_flight_then_stops_gracefully():
    # Signals go to the main thread: the runner runs in a child process of its
    # own, which sends itself the stop signal while a "push" is in flight.
    code = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys, threading, time\n"
            "from trac_breezy.startup import apache_runner\n"
            "left = [1]\n"
            "def release():\n"
            "    time.sleep(1.5); left[0] = 0\n"
            "def stop():\n"
            "    time.sleep(0.5); os.kill(os.getpid(), signal.SIGTERM)\n"
            "threading.Thread(target=release).start()\n"
            "threading.Thread(target=stop).start()\n"
            "started = time.monotonic()\n"
            f"status = apache_runner.run([sys.executable, '-c', {SERVER!r}], lambda: left[0], 10)\n"
            "print('stopped after', round(time.monotonic() - started, 1), 'status', status)\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        check=False,
    )
    assert code.returncode == 0, code.stderr
    waited = float(code.stdout.split("stopped after ")[1].split()[0])
    assert 1.4 <= waited < 5, code.stdout  # waited for the push, not the 10 s limit
    assert "graceful stop at" in code.stdout and code.stdout.rstrip().endswith("status 0")
    assert "waiting up to 10 s for 1 push(es) in flight" in code.stderr


def test_the_drain_has_a_deadline():
    started = time.monotonic()
    assert apache_runner.drain(lambda: 2, seconds=0.6) == 2
    assert 0.5 < time.monotonic() - started < 2


@pytest.fixture
def own_signals():
    """The runner installs handlers in this process: put pytest's back after."""
    saved = {number: signal.getsignal(number) for number in apache_runner.STOP_SIGNALS}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def test_a_server_that_exits_by_itself_passes_its_status_through(own_signals):
    status = apache_runner.run([sys.executable, "-c", "raise SystemExit(7)"], lambda: 0, 1)
    assert status == 7


def test_smart_requests_in_progress_count_and_a_quiet_period_follows_them(tmp_path):
    """Issue 19, finding 12: a request of the smart server (its file in the run
    directory, smart_server/in_flight.py) counts from its start until its answer
    is closed; then the stop still waits QUIET_SECONDS; a dead process's file never."""
    from trac_breezy.smart_server import in_flight

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"answer"]

    requests = tmp_path / "smart-requests"
    requests.mkdir()
    (requests / "999999999.0").touch()  # left by a daemon killed mid-request
    os.utime(requests, (0, 0))
    root = tmp_path / "bzr"
    root.mkdir()
    assert apache_runner.pushes_in_flight(root, requests) == 0
    # The container's healthcheck (a smart `hello` every 5 s) leaves no trace.
    health = in_flight.counted(str(requests), app, {"tb_healthcheck": "1"}, lambda *_: None)
    health.close()
    assert apache_runner.pushes_in_flight(root, requests) == 0

    response = in_flight.counted(str(requests), app, {}, lambda *_: None)
    assert apache_runner.requests_in_flight(requests) == 1
    assert list(response) == [b"answer"]
    response.close()
    assert apache_runner.requests_in_flight(requests) == 0
    assert apache_runner.pushes_in_flight(root, requests) == 1  # it just ended
    later = time.time() + apache_runner.QUIET_SECONDS + 0.1
    assert not apache_runner.recently_active(requests, apache_runner.QUIET_SECONDS, lambda: later)
