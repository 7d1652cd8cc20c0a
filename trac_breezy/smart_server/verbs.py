"""Which verb a smart request carries, read from the start of its body.

Every smart request is a POST to the same URL, so Apache cannot tell a pull
from a push: the app reads the verb at the start of the body and decides from
it who may send the request and how large it may be (`access`). The verb found
here is the one Breezy dispatches: both take the first structure of a
protocol-3 message (Breezy refuses any other part first) or the first line of
a protocol-1 or -2 request; anything we cannot parse is None.
"""

from __future__ import annotations

import struct

from breezy.bzr.smart import protocol
from breezy.bzr.smart import request as smart_request
from fastbencode import bdecode_as_tuple  # type: ignore[attr-defined]


def _protocol_three_verb(message: bytes) -> bytes | None:
    """The verb of a protocol-3 message, given what follows its version line."""
    (headers_length,) = struct.unpack("!L", message[:4])
    rest = message[4 + headers_length :]
    if rest[:1] != b"s":
        return None
    (length,) = struct.unpack("!L", rest[1:5])
    structure = bdecode_as_tuple(rest[5 : 5 + length])
    if not isinstance(structure, tuple):  # a hostile client may send a dict or a number
        return None
    verb = structure[0] if structure else None
    return verb if isinstance(verb, bytes) else None


def _line_verb(head: bytes) -> bytes | None:
    """The verb of a protocol-1 or -2 request (`verb\\x01arg...\\n`)."""
    if head.startswith(protocol.REQUEST_VERSION_TWO):
        head = head[len(protocol.REQUEST_VERSION_TWO) :]
    line, newline, _ = head.partition(b"\n")
    return line.split(b"\x01", 1)[0] if newline and line else None


def request_verb(head: bytes) -> bytes | None:
    """The verb of the smart request that starts with `head`, or None.

    Understands protocol 3 (`bzr message 3`: a length-prefixed bencoded header
    dict, then a structure part whose first item is the verb) and the older
    line-based protocols 2 and 1.
    """
    try:
        if head.startswith(protocol.MESSAGE_VERSION_THREE):
            return _protocol_three_verb(head[len(protocol.MESSAGE_VERSION_THREE) :])
        return _line_verb(head)
    except (struct.error, ValueError, TypeError):
        return None


def breezy_tag(verb: bytes | None) -> str | None:
    """How Breezy's registry tags `verb` (`read`, `idem`, `semi`, ...), None if unknown.

    The tags say whether a client may safely retry a request, not whether it
    changes anything (`Repository.check_write_group` is tagged `read`): they
    never decide access here, only which refusal a read-only tree answers.
    """
    if verb is None:
        return None
    try:
        return smart_request.request_handlers.get_info(verb)
    except KeyError:
        return None
