"""Facts about this container that start-up and the admin commands share.

The settings table, the paths of the run directory, and who the servers run
as. These run as root (at start, or under `docker compose exec`) or as the
servers' user; nothing here is imported inside Apache.
"""
