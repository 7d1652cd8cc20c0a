"""What runs inside Trac, in the mod_wsgi daemon: the Bazaar backend, the push
announcer, logout, the GC-freeze middleware."""
