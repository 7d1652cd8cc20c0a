"""supervisord as PID 1, with an exit status that tells whether Apache failed.

supervisord itself exits 0 whenever it shuts down. When Apache cannot stay up,
trac_breezy.exit_on_fatal leaves a marker and asks supervisord to shut down;
this wrapper then exits non-zero, so the container stops with an error (and a
restart policy applies) instead of looping or looking healthy.
"""

from __future__ import annotations

import sys

from supervisor import supervisord

from trac_breezy import log
from trac_breezy.settings import RUN_DIR

FATAL_MARKER = RUN_DIR / "fatal"
EXIT_FATAL = 1


def main(args: list[str]) -> int:
    FATAL_MARKER.unlink(missing_ok=True)
    supervisord.main(args)
    if FATAL_MARKER.exists():
        reason = FATAL_MARKER.read_text(encoding="utf-8").strip()
        log(f"error: {reason}; exiting")
        return EXIT_FATAL
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
