"""Apache's Basic-auth provider for pushes and Trac logins (`AuthBasicProvider wsgi`).

mod_wsgi runs it inside Apache's own processes (never in a daemon), for every
request that needs a user: it checks the users file as Apache's file provider
did, and remembers a good password for a minute (trac_breezy/passwords.py).
"""

from trac_breezy.passwords import check_password  # noqa: F401
