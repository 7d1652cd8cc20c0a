"""Breezy's smart server for mod_wsgi (any number of bzr roots), and where
"tip changed -> tell Trac" is wired.

The root, URL prefix, mode and realm arrive per request in the WSGI environ,
set by Apache's `SetEnv` (`trac_breezy.setenv.SmartServerEnviron`), never from
os.environ; the app for each configuration is built once and reused. The
smart server knows nothing of Trac: here Trac's push announcer listens to its
tip changes, and reads the Trac parent directory from the pushing request's
`SetEnv trac.env_parent_dir`. The app shares the daemon's heap upkeep with
Trac (trac_breezy/trac_app/gc_freeze.py): no refreeze while a smart request
runs, and the repositories Breezy's handlers open are made freeable.
"""

from trac_breezy.smart_server.app import application as smart_server
from trac_breezy.smart_server.overrides import preload
from trac_breezy.smart_server.tip_changes import on_tip_change
from trac_breezy.trac_app.gc_freeze import FreezeHeapWhenWarm
from trac_breezy.trac_app.push_announcer import announce

preload()
on_tip_change(announce)
application = FreezeHeapWhenWarm(smart_server)
