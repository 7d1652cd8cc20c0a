"""Breezy's smart server over HTTP inside mod_wsgi: many roots, one URL per branch.

Apache tells each request which tree it belongs to through the WSGI environ
(`setenv.SmartServerEnviron`: root, URL prefix, mode and realm, set with
`SetEnv`). One `app.SmartApp` is built per configuration and reused by every
later request and thread: building one starts a chroot server and registers
its root for the tip-change hook, which must not happen per request.

This package knows nothing of Trac (a test checks that it never imports it):
`tip_changes` tells whoever listens that a request moved a branch tip, and
`wsgi/bzr.wsgi` wires the Trac side (`trac_app.push_announcer`) to it.

We do not use Breezy's stock `breezy.transport.http.wsgi.SmartWSGIApp`, for
reasons it cannot be configured around:

* Access per request kind. Every smart request is a POST, so Apache cannot tell
  a pull from a push. `SmartApp` reads the verb at the start of each request and
  looks it up in Breezy's own registry (`verbs.is_read`): anything not tagged
  `read` (`idem`, `semi`, `semivfs`, `mutate`, `stream`, or an unknown verb) is
  a write and needs an authenticated user (Apache's `REMOTE_USER`). An
  anonymous write gets `401` + `WWW-Authenticate`, and `brz` retries it with
  credentials, so reads and writes share one URL.
* Memory. The stock app reads the whole request body, then builds the whole
  response, in memory. `SmartApp` feeds the body to Breezy's protocol decoder in
  chunks and streams large responses (`responses.ResponseWriter`);
  `insert_stream` gets a bounded queue (`overrides.BoundedInsertQueue`) so a
  fast client cannot pile a big push up in the server's memory.
* Confinement. A symlink inside the root must not lead outside it
  (`confinement.ConfinedTransport`), and error texts sent to clients must not
  show server paths (`confinement.scrub_paths`).
* Lock contention. A push to a branch another push has locked fails at once
  with a lock error (`overrides.FailFastBranchLock`) instead of waiting 30 s and
  then failing as "diverged".
* A client bug. Over bzr+http, `brz init URL` and server-to-server `brz branch`
  send `mkdir .` twice, and Breezy's HTTP client crashes on the `FileExists`
  error a VFS call gets back (it decodes a str). Creating a plain directory that
  already exists is therefore answered with success, as the client meant it
  (`overrides.IdempotentMkdir`); a directory holding a `.bzr` still gets
  `FileExists`.
"""
