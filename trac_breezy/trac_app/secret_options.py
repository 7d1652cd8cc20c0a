"""Trac's About page shows no secrets of the configuration.

Why: Trac's `/about` lists every option a project reads, inherited ones
included, to whoever has `CONFIG_VIEW` (every `TRAC_ADMIN`); the shared
trac.ini that every project inherits holds the host's secrets (`[notification]
smtp_password` from SMTP_PASSWORD, `TRAC_INI__…_FILE` values such as an API
key). So the admin of one project read the host's SMTP password there.
Trac has no option to mask a value (it shows them as they are), so
`hide()` wraps the one function the page asks, `trac.about.get_configinfo`,
and shows each non-empty value of an option whose name says it is a secret
as `SHOWN_INSTEAD`. The options themselves are unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import trac.about
from trac.env import Environment

# Option names that hold secrets: passwords, secrets, tokens, keys (api_key, ...).
SECRET_NAME = re.compile(r"(password|passwd|secret|token|(^|[_.-])key$)", re.IGNORECASE)
SHOWN_INSTEAD = "(hidden)"


def masked(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`get_configinfo`'s sections with the secrets' values replaced."""
    return [
        {
            **section,
            "options": [
                {**option, "value": SHOWN_INSTEAD}
                if option["value"] and SECRET_NAME.search(option["name"])
                else option
                for option in section["options"]
            ],
        }
        for section in sections
    ]


def hide() -> None:
    """Make Trac's About page of every project in this process show no secret values."""
    original = trac.about.get_configinfo
    if getattr(original, "masks", False):
        return

    def get_configinfo(env: Environment) -> list[dict[str, Any]]:
        return masked(original(env))

    get_configinfo.masks = True  # type: ignore[attr-defined]
    get_configinfo.unmasked = original  # type: ignore[attr-defined]
    trac.about.get_configinfo = get_configinfo
