"""Tasks on the volumes: what start-up does before Apache, and the
`trac-breezy-*` commands (`docker compose exec web ...`).

They run as the servers' user (root only makes folders and hands files over),
never inside Apache. They import `trac_breezy.container`, and nothing from
`startup`, which calls them.
"""


class AdminError(Exception):
    """A task that cannot go on; the text says why and what to do.

    Every admin module's own error derives from it, so a command and the
    entrypoint report all of them the same way: one line, a non-zero exit.
    """
