"""Breezy's smart server over HTTP inside mod_wsgi: many roots, one URL per branch.

Apache tells each request which tree it belongs to through the WSGI environ
(`setenv.SmartServerEnviron`: root, URL prefix, mode and realm, set with
`SetEnv`). One `app.SmartApp` is built per configuration and reused by every
later request and thread: building one starts its chroot servers and registers
its root for the tip-change hook, which must not happen per request.

This package knows nothing of Trac (a test checks that it never imports it):
`tip_changes` tells whoever listens that a request moved a branch tip, and
`wsgi/bzr.wsgi` wires the Trac side (`trac_app.push_announcer`) to it.

We do not use Breezy's stock `breezy.transport.http.wsgi.SmartWSGIApp`, for
reasons it cannot be configured around:

* Access per request kind. Every smart request is a POST to the same URL, so
  Apache cannot tell a pull from a push: `SmartApp` reads the verb at the
  start of each request (`verbs`) and decides before Breezy sees it
  (`access`). Breezy's own tags (`read`, `idem`, ...) are about retrying, not
  safety (`Repository.check_write_group` is tagged `read` and let an anonymous
  request delete pack files), so they decide nothing. An anonymous client gets
  only an explicit list of verbs, those stock `brz` sends for branch, pull,
  checkout, log, cat, info, annotate and tags (`access.ANONYMOUS_VERBS`), and
  gets them through a read-only transport even when the tree is writable. Any
  other anonymous request gets `401` + `WWW-Authenticate` (on a read-only
  tree, a write gets the read-only error at once), and `brz` retries it with
  credentials, so reads and writes share one URL. An authenticated user
  (Apache's `REMOTE_USER`) may send any verb, except the few no client gets
  (`overrides.NOT_SERVED`: `Repository.tarball`, `get_bundle`).
* Memory. The stock app reads the whole request body, then builds the whole
  response, in memory, and Breezy's handlers buffer whole request bodies and
  whole files. Requests are capped by user and verb before their body is
  read (`access.body_limit`, `413`), except a push's data stream, which is fed
  to Breezy's protocol decoder in chunks through a bounded queue
  (`overrides.BoundedInsertQueue`) whose inserter ends with its request if
  the client goes away. Large responses are streamed
  (`responses.ResponseWriter`), `get` and `readv` of big files too (`reads`).
* Confinement. A symlink inside the root must not lead outside it
  (`confinement.ConfinedTransport`), and failed replies must not show server
  paths or the chroot server's URL (`confinement.scrub_paths`,
  `confinement.ScrubbingRequestHandler`).
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
