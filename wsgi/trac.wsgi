"""Trac for mod_wsgi: every project under one parent directory, and the
front page at Trac's root.

All configuration arrives per request in the WSGI environ, set by Apache's
`SetEnv` (`trac.env_parent_dir`, `trac.base_url`, `trac.locale`, declared in
trac_breezy/setenv.py), never from os.environ: one script serves any number
of Trac instances. Trac's dispatch_request reads those keys itself; the egg
cache is a mod_wsgi directive. Trac's root (its bare project index) is the
front page instead (trac_breezy/trac_app/front). The heap is frozen once
warm, so that Trac's full garbage collection after every request stays cheap
(see trac_breezy/trac_app/gc_freeze.py). No project may turn on the admin
panels that would let its admins run code as the servers' user
(trac_breezy/trac_app/locked_components.py), nor read the host's secrets on
Trac's About page (trac_breezy/trac_app/secret_options.py).
"""

from trac.web.main import dispatch_request

from trac_breezy.trac_app.front.app import front_page
from trac_breezy.trac_app.gc_freeze import FreezeHeapWhenWarm
from trac_breezy.trac_app.locked_components import lock
from trac_breezy.trac_app.secret_options import hide

lock()  # Admin > Plugins and Logging stay off in every project (README: Plugins)
hide()  # /about shows no secret of the shared trac.ini (SMTP password, API keys)

application = FreezeHeapWhenWarm(front_page(dispatch_request))
