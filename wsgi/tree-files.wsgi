"""The Bazaar tree's plain files under the access rules (AUTHZ_FILE).

Only routed here when AUTHZ_FILE is set (apache/httpd.conf.j2); otherwise
Apache serves the files itself. The tree's root, URL prefix, realm and rule
file arrive per request by `SetEnv`, as for the smart server.
"""

from trac_breezy.smart_server.tree_files import application  # noqa: F401
