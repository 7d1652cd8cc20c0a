"""supervisord as PID 1, with an exit status that tells whether Apache failed.

supervisord itself exits 0 whenever it shuts down. When Apache cannot stay up
(supervisord gave up restarting it: the program entered FATAL), the event
listener in this module (`python -m trac_breezy.startup.supervisor
--exit-on-fatal`, see supervisord.conf) leaves a marker saying why and sends
supervisord SIGTERM, so it stops the rest gracefully; the wrapper (`main`)
then exits non-zero, so the container stops with an error (and a restart
policy applies) instead of looping or looking healthy.
"""

from __future__ import annotations

import os
import signal
import sys

from trac_breezy import log
from trac_breezy.container.paths import FATAL_MARKER

EXIT_FATAL = 1
LISTENER_FLAG = "--exit-on-fatal"


def run_supervisord(args: list[str]) -> int:
    from supervisor import supervisord

    FATAL_MARKER.unlink(missing_ok=True)
    supervisord.main(args)
    if FATAL_MARKER.exists():
        reason = FATAL_MARKER.read_text(encoding="utf-8").strip()
        log(f"error: {reason}; exiting")
        return EXIT_FATAL
    return 0


# -- the event listener (supervisor's protocol: READY, header, payload, RESULT)


def parse_header(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split())


def listen_for_fatal() -> int:
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        header = parse_header(sys.stdin.readline())
        payload = parse_header(sys.stdin.read(int(header["len"])))
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()
        if header.get("eventname") == "PROCESS_STATE_FATAL":
            name = payload.get("processname", "?")
            FATAL_MARKER.write_text(
                f"{name} could not stay up (supervisord gave up restarting it; its log is above)\n",
                encoding="utf-8",
            )
            os.kill(os.getppid(), signal.SIGTERM)


def main(args: list[str]) -> int:
    if args[:1] == [LISTENER_FLAG]:
        return listen_for_fatal()
    return run_supervisord(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
