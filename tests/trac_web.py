"""A person at Trac's web pages, for the end-to-end tests: log in (Basic auth at
/login, then Trac's cookie), create a ticket, comment on one, with Trac's form token."""

from __future__ import annotations

import base64
import html
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field


@dataclass
class TracUser:
    """One browser session against the Trac project at `base` (e.g. http://h:p/trac/code)."""

    base: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def open(self, path: str, data: dict[str, str] | None = None, headers: dict | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        try:
            response = self.opener.open(request, timeout=120)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")
        with response:
            return response.status, response.read().decode("utf-8", "replace")

    def login(self, user: str, password: str) -> None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        status, page = self.open("/login", headers={"Authorization": f"Basic {token}"})
        assert status == 200, page[-2000:]
        assert any(cookie.name == "trac_auth" for cookie in self.jar), "no trac_auth cookie"

    def form_token(self) -> str:
        for cookie in self.jar:
            if cookie.name == "trac_form_token":
                return cookie.value
        self.open("/")
        return self.form_token()

    def new_ticket(self, **fields: str) -> tuple[int, str]:
        """POST /newticket; (status, page after Trac's redirect)."""
        data = {f"field_{name}": value for name, value in fields.items()}
        return self.open(
            "/newticket", {**data, "__FORM_TOKEN": self.form_token(), "submit": "Create ticket"}
        )

    def comment(self, ticket: int, text: str) -> tuple[int, str]:
        status, page = self.open(f"/ticket/{ticket}")
        assert status == 200, page[-2000:]
        hidden = dict(re.findall(r'name="(view_time|start_time)"\s+value="([^"]*)"', page))
        assert set(hidden) == {"view_time", "start_time"}, "the ticket form changed"
        return self.open(
            f"/ticket/{ticket}",
            {
                **hidden,
                "comment": text,
                "action": "leave",
                "__FORM_TOKEN": self.form_token(),
                "submit": "Submit changes",
            },
        )


def warnings(page: str) -> list[str]:
    """Trac's warnings on a page, as text."""
    found = re.findall(r'<div id="warning"[^>]*>(.*?)</div>', page, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", w)).split()) for w in found]
