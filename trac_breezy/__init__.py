"""trac-breezy: Trac and Breezy's smart server behind one Apache httpd.

The package is grouped by the runtime each part lives in (README, Layout):

- `setenv`: what Apache's `SetEnv` hands the two apps (the one contract
  between the rendered configuration and the code inside mod_wsgi);
- `container/`: the settings table, the run-directory paths and the identity
  the servers run as (root at start, never imported inside Apache);
- `admin/`: tasks on the volumes (start-up tasks and the `trac-breezy-*`
  commands);
- `startup/`: the entrypoint, the Apache configuration, supervisord and the
  healthcheck;
- `smart_server/`: Breezy's smart server inside mod_wsgi (no Trac);
- `trac_app/`: what runs inside Trac: the Bazaar backend, the push
  announcer, logout, and the garbage-collection middleware.
"""

import sys


def one_line(text: object) -> str:
    """`text` with every run of white space (line breaks too) folded to one space."""
    return " ".join(str(text).split())


def log(message: str) -> None:
    """One line for `docker logs`, as every part of the container writes them."""
    print(f"trac-breezy: {message}", file=sys.stderr, flush=True)
