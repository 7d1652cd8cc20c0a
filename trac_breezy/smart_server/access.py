"""Who may send which smart request, and how large a request may be.

Breezy tags each verb for retrying (`read`, `idem`, `semi`, ...), not for
safety, so its tags cannot decide access: `Repository.check_write_group` is
tagged `read`, yet it locks the repository and resumes write groups named by
the client (a token with `../` in it made an anonymous request delete pack
files), and `Repository.tarball`, also `read`, copies the whole repository to
the temporary directory. Hence two layers for anonymous clients:

* They get only the verbs in `ANONYMOUS_VERBS`, an explicit list: what stock
  `brz` (Breezy 3.3, protocol 3) sends for branch, pull, checkout (also
  lightweight), log, cat, info, annotate and tags, and for the other plain
  reads traced with them (revno, ls, export to a directory, missing, merge,
  diff, update of a checkout, branches, info of a shared repository).
  `tests/test_smart_server.py` runs those commands anonymously and checks that
  every verb they send is listed. Any other verb asks for a password (401,
  and brz retries with one), or, on a read-only tree, is answered with the
  read-only error a password would not lift either.
* Reads that are listed neither way and that the client can do itself
  (`ANONYMOUS_DONE_BY_CLIENT`) are answered as unknown, as by a server without
  them: `brz export x.tar URL` then builds the archive from the plain reads
  above, as it does against an older server, instead of asking a visitor for a
  password for a read.
* They are served through a read-only transport even when the tree is
  writable (`app.SmartApp`), so a listed verb cannot write either.

Authenticated users may send any verb (Breezy's tags decide nothing for them)
except the ones no client gets (`overrides.NOT_SERVED`).

Request sizes: Breezy buffers the whole body of every request that is not a
body stream, so the body of a request is capped by who sends it and its verb
(`body_limit`). Only the three `Repository.insert_stream*` verbs (a push's
data, streamed through a bounded queue) have no cap.
"""

from __future__ import annotations

import enum

from trac_breezy.smart_server.verbs import breezy_tag

# What stock brz sends anonymously for reads (see the module docstring). `get`,
# `has`, `list_dir`, `readv` and `stat` are VFS reads of files inside the tree (logging a file of
# a pack-format branch, branching a stacked branch), through the read-only
# transport and streamed (`reads`); `hello` is the client's (and the image's
# healthcheck's) probe. `Branch.heads_to_fetch` (tip and tags) is what brz asks
# instead of those two for a branch older than bzr 0.8's formats (weave).
ANONYMOUS_VERBS = frozenset(
    {
        b"hello",
        b"get",
        b"has",
        b"list_dir",
        b"readv",
        b"stat",
        b"BzrDir.open_2.1",
        b"BzrDir.open_branchV3",
        b"BzrDir.find_repositoryV3",
        b"BzrDir.cloning_metadir",
        b"BzrDir.checkout_metadir",
        b"BzrDir.get_branches",
        b"Branch.get_stacked_on_url",
        b"Branch.last_revision_info",
        b"Branch.get_config_file",
        b"Branch.get_tags_bytes",
        b"Branch.heads_to_fetch",
        b"Branch.get_parent",
        b"Branch.get_all_reference_info",
        b"Branch.revision_id_to_revno",
        b"Branch.get_physical_lock_status",
        b"Repository.is_shared",
        b"Repository.make_working_trees",
        b"Repository.get_parent_map",
        b"Repository.get_stream_1.19",
        b"Repository.get_rev_id_for_revno",
        b"Repository.iter_files_bytes",
        b"Repository.iter_revisions",
        b"Repository.annotate_file_revision",
        b"Repository.gather_stats",
        b"Repository.get_physical_lock_status",
        b"VersionedFileRepository.get_inventories",
    }
)

# Reads whose work the client does itself when the server does not offer them.
# `Repository.revision_archive` builds a whole archive of a revision in the
# server (compressed with gzip, bzip2 or xz if asked), a daemon thread's CPU
# for as long as that takes: not for anonymous visitors, whose `brz export`
# then builds it from the plain reads above (`RemoteRevisionTree.archive`
# falls back on UnknownSmartMethod). Users keep the server's archive.
ANONYMOUS_DONE_BY_CLIENT = frozenset({b"Repository.revision_archive"})

# A push's data: streamed to an inserter thread through a bounded queue, never
# buffered whole, so never capped.
INSERT_STREAM_VERBS = frozenset(
    {
        b"Repository.insert_stream",
        b"Repository.insert_stream_1.19",
        b"Repository.insert_stream_locked",
    }
)

# Anonymous verbs whose body lists keys that grow with the tree or the history:
# `iter_files_bytes` names every file of a tree (~100 bytes each) for a
# lightweight checkout, an export or a cat; the others name revisions.
KEY_LIST_VERBS = frozenset(
    {
        b"Repository.iter_files_bytes",
        b"Repository.get_parent_map",
        b"Repository.get_stream_1.19",
        b"Repository.iter_revisions",
        b"VersionedFileRepository.get_inventories",
    }
)

KIB, MIB = 1024, 1024 * 1024
# Caps on a request (its arguments and body, i.e. the POST's Content-Length).
# Anonymous requests: a few hundred bytes in practice.
ANONYMOUS_BODY_LIMIT = 64 * KIB
# Anonymous key lists: a tree of ~70,000 files.
KEY_LIST_BODY_LIMIT = 8 * MIB
# Authenticated requests other than insert_stream: the largest are VFS `put`s
# (config files, tags) and key lists; a modern push streams its data. Only a
# push by bzr older than 1.13, or of a single file written whole through the
# VFS, could need more.
AUTHENTICATED_BODY_LIMIT = 16 * MIB


class Refusal(enum.Enum):
    """How a request is refused before Breezy sees it."""

    NEEDS_USER = "401: brz asks for a user name and password, and retries"
    READ_ONLY = "the smart-protocol error of a write to a read-only tree"
    NOT_OFFERED = "UnknownMethod, as from a server without the verb: the client does the work"


def refusal(verb: bytes | None, anonymous: bool, read_only: bool) -> Refusal | None:
    """Why the request of `verb` is refused, or None to serve it."""
    if not anonymous or verb in ANONYMOUS_VERBS:
        return None
    if verb in ANONYMOUS_DONE_BY_CLIENT:
        return Refusal.NOT_OFFERED
    if read_only and breezy_tag(verb) not in (None, "read"):
        return Refusal.READ_ONLY  # a write: a password would not help on a read-only tree
    return Refusal.NEEDS_USER


def body_limit(verb: bytes | None, anonymous: bool) -> int | None:
    """The largest request of `verb` the server takes from this user, None for no cap."""
    if anonymous:
        return KEY_LIST_BODY_LIMIT if verb in KEY_LIST_VERBS else ANONYMOUS_BODY_LIMIT
    return None if verb in INSERT_STREAM_VERBS else AUTHENTICATED_BODY_LIMIT


def too_large(limit: int, anonymous: bool) -> str:
    """The one-line answer to a request over `limit` bytes: what to do instead."""
    size = f"{limit // MIB} MiB" if limit >= MIB else f"{limit // KIB} KiB"
    if anonymous:
        return f"request over {size}, more than anonymous clients may send: send it as a user\n"
    return (
        f"request over {size}, the limit for anything but a push's data stream: "
        "push with a current brz (it streams), or upgrade the branch (brz upgrade)\n"
    )
