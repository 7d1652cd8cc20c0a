"""Breezy's smart server for mod_wsgi: any number of bzr roots.

The root, URL prefix and mode arrive per request in the WSGI environ, set by
Apache's `SetEnv` (`bzr_wsgi.root`, `bzr_wsgi.prefix`, `bzr_wsgi.mode`), never
from os.environ; the app for each (root, prefix, mode) is built once and reused.
"""

from trac_breezy.smart_server import application, preload  # noqa: F401

preload()
