"""trac.ini as text: read what an older Trac wrote, edit options, keep comments.

Trac 1.6 reads trac.ini with Python 3's `configparser`, which refuses what
Python 2's took for years: an option written twice in a section (Python 2
kept the last value), a section header written twice (Python 2 merged them),
a UTF-8 byte-order mark (Windows editors write one), bytes that are not UTF-8
(Trac 0.12 decoded them with the host's locale). Such a project does not open
at all (`option 'height' in section 'header_logo' already exists`).

`IniText` keeps the file as blocks of lines, one per section, so a repair
changes only what it must: a later header's lines join the first block of
that name, an earlier value of a repeated option is dropped, everything else
(comments, order, spelling) stays. Trac's own `Configuration.save()` would
drop every comment, which is why this is not done through Trac.
`repaired()` checks its work: the result must parse strictly and give every
option the value Python 2's parser gave, or nothing is written.
"""

from __future__ import annotations

import configparser
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from trac_breezy import NotRegularFile

BOM = "\ufeff"
# configparser's own patterns (RawConfigParser._SECT_TMPL and _OPT_TMPL).
SECTION = re.compile(r"\[(?P<header>.+)\]")
OPTION = re.compile(r"(?P<option>.*?)\s*(?P<vi>[=:])\s*(?P<value>.*)$")
COMMENT_PREFIXES = ("#", ";")


class IniError(ValueError):
    """The file cannot be read even as Python 2 read it; the text says where."""


@dataclass(eq=False)
class Item:
    """One option: its first line and its continuation lines."""

    key: str  # as Trac looks it up: lower-case (UnicodeConfigParser.optionxform)
    lines: list[str]


@dataclass(eq=False)
class Block:
    """A section header (None before the first) and what follows it."""

    name: str | None
    header: str | None = None  # its line as written (what follows "]" kept)
    lines: list[str | Item] = field(default_factory=list)  # str: blank or comment


def read(path: Path) -> bytes:
    """The bytes of the trac.ini at `path`, followed through links as Trac does.

    Opened without waiting: a FIFO planted there would otherwise hang the
    start for good (Trac itself skips what is no regular file). Raises
    OSError, or NotRegularFile.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"{path} is not a regular file")
        return file.read()


def decode(raw: bytes) -> tuple[str, str | None]:
    """The text, and the name of the encoding it was in if not UTF-8 (or a BOM)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Python 2 Tracs decoded with the host's locale: Windows-1252 on
        # Windows hosts, Latin-1 elsewhere (every byte is Latin-1).
        try:
            return raw.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError:
            return raw.decode("latin-1"), "Latin-1"
    if text.startswith(BOM):
        return text[len(BOM) :], "UTF-8 with a byte-order mark"
    return text, None


def lenient_parser() -> configparser.RawConfigParser:
    """Python 2's reading: repeats allowed, the last value wins, keys in lower case."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None, default_section="\0")
    parser.optionxform = str.lower  # type: ignore[assignment,method-assign]
    return parser


def strict_parser() -> configparser.RawConfigParser:
    """Trac 1.6's reading (trac.config.UnicodeConfigParser)."""
    parser = configparser.RawConfigParser(strict=True, interpolation=None, default_section="\0")
    parser.optionxform = str.lower  # type: ignore[assignment,method-assign]
    return parser


def lines_of(text: str) -> list[str]:
    """The lines as Trac reads the file (universal newlines: LF, CRLF, CR);
    str.splitlines would also split at a form feed or U+2028 inside a value."""
    unified = text.replace("\r\n", "\n").replace("\r", "\n")
    return unified.removesuffix("\n").split("\n") if unified else []


def values(parser: configparser.RawConfigParser) -> dict[str, dict[str, str]]:
    return {name: dict(parser.items(name)) for name in parser.sections()}


class IniText:
    """trac.ini as blocks of lines, for edits that keep everything else."""

    def __init__(self, text: str) -> None:
        self.blocks: list[Block] = [Block(None)]
        self.newline = "\r\n" if "\r\n" in text else "\n"
        item: Item | None = None
        indent = 0  # of the last option or header, as configparser's indent_level
        for number, line in enumerate(lines_of(text), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith(COMMENT_PREFIXES):
                # Neither ends an option: a deeper line after them continues
                # it (Trac writes a description's empty line as a lone tab).
                self.blocks[-1].lines.append(line)
                continue
            depth = len(line) - len(line.lstrip())
            if item is not None and depth > indent:  # a continuation line
                # blank lines and comments since its first line are inside it
                entries = self.blocks[-1].lines
                at = next(i for i in range(len(entries) - 1, -1, -1) if entries[i] is item) + 1
                item.lines += [e for e in entries[at:] if isinstance(e, str)] + [line]
                del entries[at:]
                continue
            indent = depth
            header = SECTION.match(stripped)
            if header:
                self.blocks.append(Block(header.group("header"), line))
                item = None
                continue
            option = OPTION.match(stripped)
            if option is None or not option.group("option"):
                raise IniError(f"line {number} is no option: {stripped[:60]!r}")
            item = Item(option.group("option").strip().lower(), [line])
            self.blocks[-1].lines.append(item)

    def render(self) -> str:
        out: list[str] = []
        for block in self.blocks:
            if block.name is not None:
                out.append(block.header or f"[{block.name}]")
            for entry in block.lines:
                out.extend(entry.lines if isinstance(entry, Item) else [entry])
        return self.newline.join(out) + self.newline

    def merge_repeats(self) -> list[str]:
        """Python 2's reading, written out: one block per section, the last
        value of each option; what changed, one phrase each."""
        said: list[str] = []
        first: dict[str, Block] = {}
        for block in list(self.blocks):
            if block.name is None:
                continue
            if block.name in first:
                join_before_blank_end(first[block.name], block.lines)
                self.blocks.remove(block)
                said.append(f"[{block.name}] written twice, merged")
            else:
                first[block.name] = block
        for block in self.blocks:
            items = [entry for entry in block.lines if isinstance(entry, Item)]
            last = {entry.key: entry for entry in items}
            for key, kept in last.items():
                times = sum(entry.key == key for entry in items)
                if times > 1:
                    block.lines = [
                        e
                        for e in block.lines
                        if not isinstance(e, Item) or e.key != key or e is kept
                    ]
                    said.append(
                        f"[{block.name}] {key} set {'twice' if times == 2 else f'{times} times'}, "
                        f"kept the last ({self.value_of(kept)!r})"
                    )
        return said

    def drop_inline_comments(self) -> list[str]:
        """Python 2's ConfigParser cut a value at its first `;` when a space
        came before it (`x = 1 ; note` read as `1`); Python 3's keeps it all.
        The value is written as Python 2 read it; what changed, one phrase each."""
        said = []
        for block in self.blocks:
            for entry in block.lines:
                if isinstance(entry, Item):
                    first = entry.lines[0]
                    cut = python2_value_end(first)
                    if cut is not None:
                        entry.lines[0] = first[:cut].rstrip()
                        said.append(
                            f"[{block.name}] {entry.key}: {first[cut:].strip()!r} was a comment "
                            "to Python 2, dropped"
                        )
        return said

    @staticmethod
    def value_of(item: Item) -> str:
        match = OPTION.match(item.lines[0].strip())
        return match.group("value").strip() if match else ""

    def _block(self, section: str) -> Block | None:
        return next((b for b in self.blocks if b.name == section), None)

    def get(self, section: str, option: str) -> str | None:
        block = self._block(section)
        if block is None:
            return None
        found = [e for e in block.lines if isinstance(e, Item) and e.key == option.lower()]
        return self.value_of(found[-1]) if found else None

    def options(self, section: str) -> list[str]:
        block = self._block(section)
        return [e.key for e in block.lines if isinstance(e, Item)] if block else []

    def set(self, section: str, option: str, value: str) -> None:
        """Set one option in place (or at the end of its section, made if missing)."""
        line = f"{option} = {value}"
        block = self._block(section)
        if block is None:
            block = Block(section)
            if self.blocks[-1].lines and self.blocks[-1].lines[-1] != "":
                self.blocks[-1].lines.append("")
            self.blocks.append(block)
        for entry in block.lines:
            if isinstance(entry, Item) and entry.key == option.lower():
                entry.lines = [line]
                return
        block.lines.insert(blank_end(block.lines), Item(option.lower(), [line]))

    def remove(self, section: str, option: str) -> None:
        block = self._block(section)
        if block is not None:
            block.lines = [
                e for e in block.lines if not (isinstance(e, Item) and e.key == option.lower())
            ]


def blank_end(lines: list[str | Item]) -> int:
    """Where the blank lines that end a section start."""
    position = len(lines)
    while position and lines[position - 1] == "":
        position -= 1
    return position


def join_before_blank_end(block: Block, lines: list[str | Item]) -> None:
    """A repeated section's lines, moved up to the end of its first block."""
    end = blank_end(block.lines)
    block.lines[end:end] = lines[: blank_end(lines)]


def parse_leniently(text: str) -> configparser.RawConfigParser:
    parser = lenient_parser()
    try:
        parser.read_string(text)
    except configparser.MissingSectionHeaderError as error:
        raise IniError(f"line {error.lineno} comes before any [section]") from None
    except configparser.ParsingError as error:
        number, line = error.errors[0]
        raise IniError(f"line {number} cannot be read: {line.strip()[:60]!r}") from None
    except configparser.Error as error:
        raise IniError(" ".join(str(error).split())) from None
    return parser


def python2_value_end(line: str) -> int | None:
    """Where Python 2.7's ConfigParser ended the value on an option's first
    line (`RawConfigParser._read`: the first `;` of the value, if a space comes
    right before it), or None when it kept the whole line."""
    match = OPTION.match(line.strip())
    if match is None:
        return None
    value_start = line.index(line.strip()) + match.start("value")
    value = line[value_start:]
    position = value.find(";")
    if position > 0 and value[position - 1].isspace():
        return value_start + position
    return None


def without_inline_comments(text: str) -> str:
    """`text` with each option's first line cut where Python 2 cut it."""
    ini = IniText(text)
    ini.drop_inline_comments()
    return ini.render()


def repaired(raw: bytes) -> tuple[IniText, list[str]]:
    """The file as Python 2's Trac read it, fit for Trac 1.6, and what that took.

    Raises IniError when Python 2 could not have read it either (then it was
    broken before the move, and a person must look), or when the repair
    would change a value (a bug here; nothing is written).
    """
    text, encoding = decode(raw)
    ini = IniText(text)  # its errors name the line
    python2 = without_inline_comments(text)
    before = values(parse_leniently("\n".join(lines_of(python2))))
    said = [f"was {encoding}, now UTF-8"] if encoding else []
    said += ini.drop_inline_comments()
    said += ini.merge_repeats()
    check_same(ini, before)
    return ini, said


def check_same(ini: IniText, before: dict[str, dict[str, str]]) -> None:
    """`ini` parses as Trac 1.6 parses, to the values Python 2 read from the original."""
    parser = strict_parser()
    try:
        parser.read_string(ini.render())
    except configparser.Error as error:
        raise IniError(f"could not be repaired ({' '.join(str(error).split())})") from None
    if values(parser) != before:
        raise IniError("could not be repaired without changing a value; fix it by hand")
