"""Logout that sticks, with Apache Basic auth in front of Trac's /login.

Trac's logout forgets its own cookie, but the browser keeps the Basic-auth
password it sent to /login and sends it again, unasked, on the next click on
"Login": the user is back in without being asked, as whoever logged in last,
and cannot log in as someone else. Browsers drop remembered credentials
only when the server answers them with 401.

So logout also sets a marker cookie, and the first /login after it answers
401 (with Apache's realm) and clears the marker: the browser asks for a user
and password, and the next /login, with what the user typed, goes through
Apache's check and Trac's login as usual. The component is enabled in new
projects (`trac_breezy.*`); it does nothing for requests without the marker.
The realm comes with each request from Apache's `SetEnv` (`trac_breezy.realm`),
like the rest of the apps' configuration.
"""

from __future__ import annotations

from trac.core import Component, implements
from trac.util.html import escape
from trac.web.api import IRequestFilter, Request, RequestDone

from trac_breezy.setenv import REALM, TRAC_REALM_KEY

MARKER = "trac_breezy_logged_out"


class BasicAuthLogout(Component):
    """Make the browser forget its Basic-auth password when the user logs out."""

    implements(IRequestFilter)

    # IRequestFilter methods

    def pre_process_request(self, req: Request, handler: object) -> object:
        path = req.path_info.rstrip("/")
        if path == "/logout" and req.method == "POST" and req.is_authenticated:
            self._set_marker(req, "1", expires=None)
        elif path == "/login" and MARKER in req.incookie:
            self._ask_again(req)
        return handler

    def post_process_request(
        self, req: Request, template: str | None, data: dict[str, object], metadata: object
    ) -> tuple[str | None, dict[str, object], object]:
        return template, data, metadata

    # Internal methods

    def _set_marker(self, req: Request, value: str, expires: int | None) -> None:
        req.outcookie[MARKER] = value
        req.outcookie[MARKER]["path"] = req.base_path or "/"
        if expires is not None:
            req.outcookie[MARKER]["expires"] = expires

    def _ask_again(self, req: Request) -> None:
        self._set_marker(req, "", expires=-10000)
        login, project = escape(req.href.login()), escape(req.href())
        body = (
            "<!DOCTYPE html><html><head><title>Logged out</title></head><body>"
            f'<p>You logged out. <a href="{login}">Log in again</a> or go back to the '
            f'<a href="{project}">project</a>.</p></body></html>'
        ).encode()
        req.send_response(401)
        realm = req.environ.get(TRAC_REALM_KEY, REALM)
        req.send_header("WWW-Authenticate", f'Basic realm="{realm}"')
        req.send_header("Content-Type", "text/html; charset=utf-8")
        req.send_header("Content-Length", str(len(body)))
        req.send_header("Cache-Control", "no-store")
        req.end_headers()
        req.write(body)
        raise RequestDone
