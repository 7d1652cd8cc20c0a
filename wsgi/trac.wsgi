"""Trac for mod_wsgi: every project under one parent directory.

All configuration arrives per request in the WSGI environ, set by Apache's
`SetEnv` (`trac.env_parent_dir`, `trac.base_url`, `trac.locale`, declared in
trac_breezy/setenv.py), never from os.environ: one script serves any number
of Trac instances. Trac's dispatch_request reads those keys itself; the egg
cache is a mod_wsgi directive. The heap is frozen once warm, so that Trac's
full garbage collection after every request stays cheap (see
trac_breezy/trac_app/gc_freeze.py).
"""

from trac.web.main import dispatch_request

from trac_breezy.trac_app.gc_freeze import FreezeHeapWhenWarm

application = FreezeHeapWhenWarm(dispatch_request)
