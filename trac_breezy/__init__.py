"""trac-breezy: Trac and Breezy's smart server behind one Apache httpd."""

import sys


def log(message: str) -> None:
    """One line for `docker logs`, as every part of the container writes them."""
    print(f"trac-breezy: {message}", file=sys.stderr, flush=True)
