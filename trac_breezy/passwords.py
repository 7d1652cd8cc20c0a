"""Apache's Basic-auth check of the users file, remembering good passwords briefly.

Apache's own file provider (mod_authn_file) runs the hash of the users file on
every request it authenticates, and a push makes dozens of requests: that is
why the users' bcrypt cost was 5, which a stolen file does not survive for
long. Apache has no provider that remembers a successful check
(mod_authn_socache caches the hash, not the result), so this is one, run by
mod_wsgi's `WSGIAuthUserScript` (wsgi/auth.wsgi) inside Apache's own
processes (mod_wsgi runs authentication scripts there, never in a daemon):

- the password is checked against the users file's line by APR's own
  `apr_password_validate`, the function mod_authn_file calls, so every hash an
  old htpasswd file may hold (bcrypt at any cost, apr1 MD5, SHA1, crypt) keeps
  working exactly as it did;
- a successful check is remembered for `REMEMBER_SECONDS` under an HMAC, with a
  key made at each start, of the user, the password and the file's line: no
  password or reusable hash is kept, and a changed line (a new password) or a
  changed file (a removed user) misses; wrong passwords are never remembered;
- a user name the file does not know is checked against a decoy hash at the
  users' cost (made at each start, `DECOY_VARIABLE`), and a wrong password for
  a user whose hash is cheaper pays the decoy too, so a wrong password costs
  the same whether the user exists or not; a refusal stays a 401, which
  mod_qos counts as a failed login.

The file is read at every request, as mod_authn_file does, so a user added or
removed with `trac-breezy-user` counts at once.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping

# How long a successful check is remembered: a push's requests within it
# cost no bcrypt; a changed password or file is never served from it.
REMEMBER_SECONDS = 60.0
# Enough for every user of a busy host; past it, the oldest half goes.
MAX_REMEMBERED = 4096
# Handed to Apache's environment by the entrypoint (root checked both).
USERS_FILE_VARIABLE = "TRAC_BREEZY_USERS_FILE"
DECOY_VARIABLE = "TRAC_BREEZY_DECOY_HASH"
# The users file of a big host is well under this.
MAX_FILE_BYTES = 16 << 20


@functools.cache
def _apr_password_validate() -> Callable[[bytes, bytes], int]:
    """APR's `apr_password_validate` (libaprutil, loaded in Apache already)."""
    validate = ctypes.CDLL("libaprutil-1.so.0").apr_password_validate
    validate.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    validate.restype = ctypes.c_int
    return validate


def hash_matches(password: bytes, hashed: bytes) -> bool:
    """APR's check of `password` against an htpasswd hash (what Apache does);
    ctypes lets other threads run meanwhile."""
    return _apr_password_validate()(password, hashed) == 0


def bcrypt_cost(hashed: bytes) -> int:
    """The cost of a bcrypt hash (`$2y$10$...`); 0 for any other kind (apr1, SHA1, crypt).

    A wrong password for a user whose line still holds an older, cheaper hash
    (the README promises mounted htpasswd files keep working) is answered in
    1-3 ms; one for a name the file lacks costs the decoy's ~50 ms. So such a
    refusal also pays the decoy: the time no longer tells which names exist.
    """
    parts = hashed.split(b"$")
    if len(parts) >= 4 and parts[1] in (b"2y", b"2b", b"2a") and parts[2].isdigit():
        return int(parts[2])
    return 0


def users_line(text: bytes, user: bytes) -> bytes | None:
    """The hash of `user` in htpasswd `text` (the first line naming it, as
    mod_authn_file takes), or None. A leading UTF-8 byte order mark is
    skipped, as Apache on Windows does (files come from such hosts)."""
    for line in text.removeprefix(b"\xef\xbb\xbf").splitlines():
        line = line.strip()  # as Apache's ap_cfg_getline
        name, colon, rest = line.partition(b":")
        if colon and name == user and not line.startswith(b"#"):
            return rest.split(b":", 1)[0]  # the hash ends at the next colon, as there
    return None


class UsersFile:
    """The users file and what was recently checked against it, for one process."""

    def __init__(
        self, path: str, decoy: bytes, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path, self.decoy, self.clock = path, decoy, clock
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._remembered: dict[bytes, float] = {}
        self._file_digest = b""

    def check(self, user: bytes, password: bytes) -> bool | None:
        """True: the password is the user's; False: it is not; None: no such user."""
        hashed = users_line(self._read(), user)
        if hashed is None:
            hash_matches(password, self.decoy)  # as long as a wrong password takes
            return None
        mark = hmac.digest(self._key, b"\0".join((user, password, hashed)), "sha256")
        now = self.clock()
        with self._lock:
            if self._remembered.get(mark, 0.0) > now:
                return True
        if not hash_matches(password, hashed):
            if bcrypt_cost(hashed) < bcrypt_cost(self.decoy):
                hash_matches(password, self.decoy)  # an old, cheap hash: pay as unknown names do
            return False
        self._remember(mark, now + REMEMBER_SECONDS)
        return True

    def _read(self) -> bytes:
        """The file's bytes; what was remembered is forgotten when they change."""
        with open(self.path, "rb") as users:
            text = users.read(MAX_FILE_BYTES)
        digest = hashlib.sha256(text).digest()
        with self._lock:
            if digest != self._file_digest:
                self._remembered.clear()
                self._file_digest = digest
        return text

    def _remember(self, mark: bytes, until: float) -> None:
        with self._lock:
            if len(self._remembered) >= MAX_REMEMBERED:
                now = self.clock()
                kept = sorted((t, m) for m, t in self._remembered.items() if t > now)
                self._remembered = {m: t for t, m in kept[len(kept) // 2 :]}
            self._remembered[mark] = until


_users: UsersFile | None = None
_users_lock = threading.Lock()


def users_file(environ: Mapping[str, str] = os.environ) -> UsersFile:
    """This process's UsersFile, made on first use from Apache's environment."""
    global _users
    with _users_lock:
        if _users is None:
            _users = UsersFile(
                environ[USERS_FILE_VARIABLE], environ[DECOY_VARIABLE].encode("ascii")
            )
        return _users


def check_password(environ: dict[str, object], user: str, password: str) -> bool | None:
    """mod_wsgi's Basic-auth provider: it hands over the bytes as Latin-1 text."""
    return users_file().check(user.encode("latin-1"), password.encode("latin-1"))
