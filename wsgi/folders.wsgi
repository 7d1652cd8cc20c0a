"""The folders of the Bazaar tree as pages for browsers (`/bzr/…/`), in
Trac's daemon group.

Apache sends only directory URLs here; the files below them stay plain files
for `http://` readers, and the smart server has its own script (bzr.wsgi).
The tree's root, URL paths and modes arrive per request by `SetEnv`
(`trac_breezy.setenv.PagesEnviron`). Shares the daemon's heap upkeep with
Trac (trac_breezy/trac_app/gc_freeze.py).
"""

from trac_breezy.trac_app.front.app import folder_pages
from trac_breezy.trac_app.gc_freeze import FreezeHeapWhenWarm

application = FreezeHeapWhenWarm(folder_pages)
