"""Trac for mod_wsgi: every project under one parent directory.

All configuration arrives per request in the WSGI environ, set by Apache's
`SetEnv` (`trac.env_parent_dir`, `trac.base_url`, `trac.locale`), never from
os.environ: one script serves any number of Trac instances. Trac's
dispatch_request reads those keys itself; the egg cache is a mod_wsgi directive.
"""

from trac.web.main import dispatch_request as application  # noqa: F401
