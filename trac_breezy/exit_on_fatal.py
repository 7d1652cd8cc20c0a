"""supervisor event listener: when a program enters FATAL, stop the container.

FATAL means supervisord gave up restarting it (it kept exiting right after
start). Record why, then send supervisord SIGTERM so it stops the rest
gracefully; trac_breezy.supervisor_main turns the record into a non-zero exit.
"""

from __future__ import annotations

import os
import signal
import sys

from trac_breezy.supervisor_main import FATAL_MARKER


def parse_header(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split())


def main() -> int:
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


if __name__ == "__main__":
    sys.exit(main())
