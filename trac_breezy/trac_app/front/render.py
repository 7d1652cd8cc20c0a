"""The pages' HTML, from the Jinja2 templates in `templates/`.

Why this exists: one place that knows the templates, their escaping (on:
names and messages come from pushers and ticket reporters) and the filters
they use for times. Trac renders its own pages with Jinja2 too; these
templates use its style sheets, not its layout machinery, which needs a
project.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jinja2
from trac.util.datefmt import pretty_timedelta

TEMPLATES = Path(__file__).resolve().parent / "templates"

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def as_datetime(value: datetime | float) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(value, UTC)


def ago(value: datetime | float) -> str:
    """ "5 minutes ago", as Trac says it."""
    return f"{pretty_timedelta(as_datetime(value))} ago"


def isotime(value: datetime | float) -> str:
    """The exact time, for a tooltip: "2026-11-24 13:04 UTC"."""
    return as_datetime(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_environment.filters["ago"] = ago
_environment.filters["isotime"] = isotime


def render(template: str, **context: object) -> bytes:
    return _environment.get_template(template).render(**context).encode("utf-8")
