"""trac.ini as an older `trac-admin initenv` wrote it, and text-level edits of it.

An old `initenv` wrote every option of every enabled component with its
default (`Configuration.set_defaults` in trac/config.py of 0.12, 1.0 and 1.2),
sections and options sorted, as Trac 1.6 still does. So the old file is Trac
1.6's own file with two kinds of change undone:

- options that an upgrade script moved (`trac/upgrades/dbNN.py`): undone by
  the steps in `old_trac.py`, one per script;
- options that came or went, or whose default changed, between releases with
  no upgrade script: the tables below. They were found by listing every
  `Option(...)`/`ListOption(...)`/... declared under `trac/` (the modules
  enabled by default; `tracopt/` is off in a new environment) at the tags
  trac-0.12.7, trac-1.0.20, trac-1.2.6 and trac-1.6 of
  https://github.com/edgewall/trac and comparing them. The list for 1.6
  matches the trac.ini that Trac 1.6's `initenv` writes here, option for
  option, which checks the method.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

HEADER = "# -*- coding: utf-8 -*-\n\n"

# Release -> (section, option) -> old default, or None where the option did
# not exist yet. Each release's table holds what differs from the next newer
# one, so an environment of 0.12 gets the 1.2, 1.0 and 0.12 tables in turn.
RELEASE_DEFAULTS: dict[int, dict[tuple[str, str], str | None]] = {
    # Trac 1.2.6: trac/log.py's LOG_TYPES starts with 'none' and trac/env.py's
    # log_level ChoiceOption takes LOG_LEVELS reversed (DEBUG first);
    # trac/web/chrome.py still had genshi_cache_size, show_ip_addresses and
    # use_chunked_encoding = false; trac/ticket/web_ui.py ticket_show_details
    # = false.
    41: {
        ("logging", "log_type"): "none",
        ("logging", "log_level"): "DEBUG",
        ("timeline", "ticket_show_details"): "false",
        ("trac", "use_chunked_encoding"): "false",
        ("trac", "genshi_cache_size"): "128",
        ("trac", "show_ip_addresses"): "false",
    },
    # Trac 1.0.20: options that 1.2 added, and mime_map_patterns' old value
    # (trac/mimeview/api.py).
    29: {
        ("milestone", "default_group_by"): None,
        ("milestone", "default_retarget_to"): None,
        ("notification", "default_format.email"): None,
        ("notification", "email_address_resolvers"): None,
        ("ticket", "allowed_empty_fields"): None,
        ("timeline", "ticket_show_component"): None,
        ("trac", "auth_cookie_domain"): None,
        ("trac", "show_full_names"): None,
        ("wiki", "default_edit_area_height"): None,
        ("mimeviewer", "mime_map_patterns"): "text/plain:README|INSTALL|COPYING.*",
    },
    # Trac 0.12.7: options that 1.0 added; svn_fs.py lived in
    # trac/versioncontrol/ (enabled by default, so [svn] branches/tags were
    # written) and silvercity.py in trac/mimeview/; old defaults of
    # trac/mimeview/api.py (mime_map, treat_as_binary, default_charset),
    # trac/env.py (footer), trac/ticket/api.py (default_owner) and
    # trac/wiki/api.py (safe_schemes).
    26: {
        ("attachment", "max_zip_size"): None,
        ("inherit", "htdocs_dir"): None,
        ("mimeviewer", "mime_map_patterns"): None,
        ("notification", "batch_subject_template"): None,
        ("notification", "message_id_hash"): None,
        ("notification", "smtp_from_author"): None,
        ("revisionlog", "graph_colors"): None,
        ("ticket", "max_summary_size"): None,
        ("trac", "anonymous_session_lifetime"): None,
        ("trac", "default_date_format"): None,
        ("trac", "default_dateinfo_format"): None,
        ("trac", "jquery_location"): None,
        ("trac", "jquery_ui_location"): None,
        ("trac", "jquery_ui_theme_location"): None,
        ("trac", "use_chunked_encoding"): None,
        ("trac", "use_xsendfile"): None,
        ("trac", "wiki_toolbars"): None,
        ("trac", "xsendfile_header"): None,
        ("wiki", "safe_origins"): None,
        ("mimeviewer", "silvercity_modes"): "",
        ("svn", "branches"): "trunk,branches/*",
        ("svn", "tags"): "tags/*",
        ("mimeviewer", "mime_map"): "text/x-dylan:dylan,text/x-idl:ice,text/x-ada:ads:adb",
        ("mimeviewer", "treat_as_binary"): (
            "application/octet-stream,application/pdf,application/postscript,"
            "application/msword,application/rtf,"
        ),
        ("project", "footer"): (
            'Visit the Trac open source project at<br /><a href="http://trac.edgewall.org/">'
            "http://trac.edgewall.org/</a>"
        ),
        ("ticket", "default_owner"): "",
        ("trac", "default_charset"): "iso-8859-15",
        ("wiki", "safe_schemes"): "cvs,file,ftp,git,irc,http,https,news,sftp,smb,ssh,svn,svn+ssh",
        # trac/web/chrome.py: no spaces yet in 0.12.
        ("trac", "mainnav"): "wiki,timeline,roadmap,browser,tickets,newticket,search",
        ("trac", "metanav"): "login,logout,prefs,help,about",
    },
}

# [trac] mainnav / metanav as 1.0.20's trac/web/chrome.py declared them
# (db41 moved them to [mainnav]/[metanav] `<name>.order` in 1.2).
MAINNAV = "wiki, timeline, roadmap, browser, tickets, newticket, search"
METANAV = "login, logout, prefs, help, about"


def read(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser


def write(path: Path, parser: configparser.RawConfigParser) -> None:
    """Sorted sections and options, `name = value`: Trac's `Configuration.save`."""
    lines = [HEADER]
    for section in sorted(parser.sections()):
        lines.append(f"[{section}]\n")
        for name in sorted(parser.options(section)):
            lines.append(f"{name} = {parser.get(section, name)}\n")
        lines.append("\n")
    path.write_text("".join(lines), encoding="utf-8")


def put(parser: configparser.RawConfigParser, section: str, name: str, value: str | None) -> None:
    """Set, or remove with None; a section left empty goes, as Trac's save drops it."""
    if value is None:
        if parser.has_section(section):
            parser.remove_option(section, name)
            if not parser.options(section):
                parser.remove_section(section)
        return
    if not parser.has_section(section):
        parser.add_section(section)
    parser.set(section, name, value)


def apply_release_defaults(parser: configparser.RawConfigParser, version: int) -> None:
    for release in sorted(RELEASE_DEFAULTS, reverse=True):
        if version <= release:
            for (section, name), value in RELEASE_DEFAULTS[release].items():
                put(parser, section, name, value)


def set_text(ini: Path, section: str, name: str, value: str) -> None:
    """Set an option by editing lines, as a person with an editor does.

    Text-level, so that it works on files Python 3's ConfigParser refuses and
    leaves every other line as it was.
    """
    lines = ini.read_text(encoding="utf-8").splitlines(keepends=True)
    start = _section_line(lines, section)
    if start is None:
        lines += [f"\n[{section}]\n", f"{name} = {value}\n"]
    else:
        end = _section_end(lines, start)
        for i in range(start + 1, end):
            if re.match(rf"{re.escape(name)}\s*[=:]", lines[i]):
                lines[i] = f"{name} = {value}\n"
                break
        else:
            lines.insert(start + 1, f"{name} = {value}\n")
    ini.write_text("".join(lines), encoding="utf-8")


def add_lines(ini: Path, section: str, new: list[str]) -> None:
    """Insert lines at the end of `section` (appending the section if absent)."""
    lines = ini.read_text(encoding="utf-8").splitlines(keepends=True)
    start = _section_line(lines, section)
    if start is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines += [f"\n[{section}]\n", *new]
    else:
        end = _section_end(lines, start)
        while end > start + 1 and not lines[end - 1].strip():
            end -= 1
        lines[end:end] = new
    ini.write_text("".join(lines), encoding="utf-8")


def remove_option_lines(ini: Path, section: str, name: str) -> None:
    lines = ini.read_text(encoding="utf-8").splitlines(keepends=True)
    start = _section_line(lines, section)
    if start is None:
        return
    end = _section_end(lines, start)
    keep = [
        line
        for i, line in enumerate(lines)
        if not (start < i < end and re.match(rf"{re.escape(name)}\s*[=:]", line))
    ]
    ini.write_text("".join(keep), encoding="utf-8")


def _section_line(lines: list[str], section: str) -> int | None:
    for i, line in enumerate(lines):
        if line.strip() == f"[{section}]":
            return i
    return None


def _section_end(lines: list[str], start: int) -> int:
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("["):
            return i
    return len(lines)
